// WireGuard's BackendData: {"PublicKey":"<base64>","Port":51820}. flannel writes only
// PublicKey and dials every peer on its own ListenPort; twill also writes the port it listens
// on, and a lease without one (flannel's) is dialled on the network config's ListenPort, so
// flannel and twill hosts read each other's leases. A key that is not 32 bytes of base64 is
// 'bad-key' and a port outside 1..65535 'bad-port': the lease is skipped, never fatal.
import { isJsonObject, jsonField, type NetworkConfig } from '../../config/network';
import type { BackendDataCodec } from '../../subnet/lease';
import { decodeKey } from './key';

export interface WireguardData {
  /** Base64, canonical (44 characters). */
  publicKey: string;
  port: number;
}

const CANONICAL = /^\{"PublicKey":"([A-Za-z0-9+/]{43}=)","Port":([1-9][0-9]{0,4})\}$/;

const configPort = (c: NetworkConfig): number => (c.backend.type === 'wireguard' ? c.backend.listenPort : 0);

export const wireguardCodec: BackendDataCodec<WireguardData> = {
  type: 'wireguard',
  decode(raw, config) {
    const obj = isJsonObject(raw) ? raw : {};
    const keyRaw = jsonField(obj, 'PublicKey');
    if (decodeKey(keyRaw) === null) {
      const what = typeof keyRaw === 'string' ? `${keyRaw.length} characters that are not a base64 32-byte key` : JSON.stringify(keyRaw ?? null);
      return { ok: false, reason: 'bad-key', detail: `invalid BackendData.PublicKey: ${what}` };
    }
    const portRaw = jsonField(obj, 'Port');
    const port = portRaw === undefined ? configPort(config) : portRaw;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      return { ok: false, reason: 'bad-port', detail: `invalid BackendData.Port ${JSON.stringify(portRaw)}` };
    }
    return { ok: true, data: { publicKey: keyRaw as string, port } };
  },
  decodeCanonical(text) {
    const m = text === undefined ? null : CANONICAL.exec(text);
    if (!m || decodeKey(m[1]) === null) return null;
    const port = Number(m[2]);
    return port <= 65535 ? { publicKey: m[1]!, port } : null;
  },
  encode: (d) => ({ PublicKey: d.publicKey, Port: d.port }),
  equals: (a, b) => a.publicKey === b.publicKey && a.port === b.port,
  describe: (d) => `key ${d.publicKey}, port ${d.port}`,
};
