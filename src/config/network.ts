// The cluster network config stored at `<prefix>/config`, in flannel's schema and with
// flannel's defaults, so an etcd that flannel used works unchanged.
//
// Rules (from flannel's pkg/subnet/config.go CheckNetworkConfig and the vxlan backend):
// - Network is required and must not be empty (0.0.0.0/0 counts as empty); host bits are masked.
// - SubnetLen absent or 0: 24 when Network is /22 or larger, Network's length + 2 for /23../28,
//   an error for anything smaller than /28. When given: at most 30 and at least Network + 2
//   (the network must hold four subnets, the first of which is never handed out).
// - SubnetMin absent or 0.0.0.0: the second subnet of Network (the first is skipped so no host
//   gets the network address itself); SubnetMax absent or 0.0.0.0: the last subnet. When given,
//   each must lie inside Network and sit on a SubnetLen boundary. flannel does not require
//   SubnetMin <= SubnetMax; neither do we (such a range simply has no free subnet).
// - Backend absent: vxlan. Types: "vxlan" and "host-gw" (each is a folder in src/backends/).
//   vxlan: VNI default 1 (1..2^24-1), Port default 8472; Port 0 also means 8472, because
//   flannel passes 0 to the kernel, whose VXLAN default destination port is 8472;
//   DirectRouting default false (a JSON boolean). host-gw has no options.
//   wireguard (flannel's pkg/backend/wireguard): ListenPort default 51820; PSK (base64, 32
//   bytes) optional; PersistentKeepaliveInterval in seconds, default 0 (off); Mode "separate"
//   (default), "auto" or "ipv4" — one device for IPv4, as twill has no IPv6; "ipv6" is
//   refused. ListenPortV6 is accepted and ignored (IPv6 only).
// - Field names match case-insensitively, as Go's encoding/json does (flannel's own tests
//   write `{"network": ...}`); unknown fields are ignored; JSON null counts as absent.
// Not carried over: flannel accepts VNI values above 65535 but writes them into the lease as a
// uint16; twill keeps the full 24-bit value (only matters when mixing with flannel nodes).
import { decodeKey } from '../backends/wireguard/key';
import { formatIp4, formatPrefix4, ipInPrefix, maskOf, parseIp4, parsePrefix4, prefixSize, type Ip4, type Prefix4 } from '../ip/ipv4';
import { TwillError } from '../base/twill-error';

export interface NetworkConfig {
  network: Prefix4;
  subnetLen: number;
  subnetMin: Ip4;
  subnetMax: Ip4;
  backend: BackendConfig;
}

export interface VxlanConfig {
  type: 'vxlan';
  vni: number;
  port: number;
  /** Peers on the underlay's own link get a plain route via their PublicIP instead of VXLAN. */
  directRouting: boolean;
}

export interface WireguardConfig {
  type: 'wireguard';
  listenPort: number;
  /** Base64 pre-shared key shared by every host, or undefined. */
  psk: string | undefined;
  /** Seconds; 0 = off. */
  keepalive: number;
  mode: 'separate' | 'auto' | 'ipv4';
}

export type BackendConfig = VxlanConfig | { type: 'host-gw' } | WireguardConfig;

export const BACKEND_TYPES: ReadonlyArray<BackendConfig['type']> = ['vxlan', 'host-gw', 'wireguard'];

export class NetworkConfigError extends TwillError<'ERR_NETWORK_CONFIG'> {
  /** The config key that was wrong ("Network", "SubnetLen", "Backend.VNI", or "(json)"). */
  readonly field: string;

  constructor(field: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_NETWORK_CONFIG', `network config ${field}: ${detail}`, options);
    this.name = 'NetworkConfigError';
    this.field = field;
  }
}

export const DEFAULT_VNI = 1;
export const DEFAULT_VXLAN_PORT = 8472;
export const MAX_VNI = 0xffffff;
export const DEFAULT_WIREGUARD_PORT = 51820;

type JsonObject = { readonly [key: string]: unknown };

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The value of `name` in a decoded JSON object the way Go's encoding/json finds a struct
 * field: exact or case-insensitive key match, the last matching key winning. JSON null is
 * reported as absent (undefined).
 */
export function jsonField(obj: JsonObject, name: string): unknown {
  const folded = name.toLowerCase();
  let found: unknown;
  // Hot: called several times per lease, 10,000 leases per cold start. Keys of another
  // length cannot fold to `name` (ASCII field names), so most keys cost one comparison.
  for (const key of Object.keys(obj)) {
    if (key === name || (key.length === name.length && key.toLowerCase() === folded)) found = obj[key];
  }
  return found === null ? undefined : found;
}

function integerField(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new NetworkConfigError(field, `must be an integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function ipField(field: string, v: unknown): Ip4 {
  if (typeof v !== 'string') throw new NetworkConfigError(field, `must be a string with an IPv4 address, got ${JSON.stringify(v)}`);
  try {
    return parseIp4(v);
  } catch (err) {
    throw new NetworkConfigError(field, `invalid IPv4 address ${JSON.stringify(v)}`, { cause: err });
  }
}

function parseNetwork(v: unknown): Prefix4 {
  if (v === undefined) throw new NetworkConfigError('Network', 'is required (e.g. "10.244.0.0/16")');
  if (typeof v !== 'string') throw new NetworkConfigError('Network', `must be a string in CIDR form, got ${JSON.stringify(v)}`);
  let network: Prefix4;
  try {
    network = parsePrefix4(v);
  } catch (err) {
    throw new NetworkConfigError('Network', `invalid IPv4 CIDR ${JSON.stringify(v)}`, { cause: err });
  }
  if (network.ip === 0 && network.len === 0) throw new NetworkConfigError('Network', `${JSON.stringify(v)} is empty; give a real network such as "10.244.0.0/16"`);
  return network;
}

function parseSubnetLen(v: unknown, network: Prefix4): number {
  const given = v === undefined ? 0 : integerField('SubnetLen', v);
  if (given < 0) throw new NetworkConfigError('SubnetLen', `must not be negative (got ${given})`);
  if (given > 0) {
    // Room for the tunnel and bridge addresses on each host.
    if (given > 30) throw new NetworkConfigError('SubnetLen', `must be at most 30 (got ${given})`);
    // Four subnets at least: the first is never handed out.
    if (given < network.len + 2) {
      throw new NetworkConfigError('SubnetLen', `must be at least ${network.len + 2} so that ${formatPrefix4(network)} holds four subnets (got ${given})`);
    }
    return given;
  }
  if (network.len > 28) throw new NetworkConfigError('Network', `${formatPrefix4(network)} is too small; the smallest usable network is a /28`);
  return network.len <= 22 ? 24 : network.len + 2;
}

function parseBackend(v: unknown): BackendConfig {
  if (v === undefined) return { type: 'vxlan', vni: DEFAULT_VNI, port: DEFAULT_VXLAN_PORT, directRouting: false };
  if (!isJsonObject(v)) throw new NetworkConfigError('Backend', `must be an object such as {"Type":"vxlan"}, got ${JSON.stringify(v)}`);

  const type = jsonField(v, 'Type');
  const supported = BACKEND_TYPES.map((t) => JSON.stringify(t)).join(', ');
  if (type === undefined) throw new NetworkConfigError('Backend.Type', `is required when Backend is given (one of ${supported})`);
  if (type === 'host-gw') return { type };
  if (type === 'wireguard') return parseWireguard(v);
  if (type !== 'vxlan') throw new NetworkConfigError('Backend.Type', `unsupported backend type ${JSON.stringify(type)} (one of ${supported})`);

  const vniRaw = jsonField(v, 'VNI');
  const vni = vniRaw === undefined ? DEFAULT_VNI : integerField('Backend.VNI', vniRaw);
  if (vni < 1 || vni > MAX_VNI) throw new NetworkConfigError('Backend.VNI', `must be between 1 and ${MAX_VNI} (got ${vni})`);

  const portRaw = jsonField(v, 'Port');
  let port = portRaw === undefined ? 0 : integerField('Backend.Port', portRaw);
  if (port === 0) port = DEFAULT_VXLAN_PORT;
  if (port < 1 || port > 65535) throw new NetworkConfigError('Backend.Port', `must be between 1 and 65535 (got ${port})`);

  const drRaw = jsonField(v, 'DirectRouting');
  if (drRaw !== undefined && typeof drRaw !== 'boolean') throw new NetworkConfigError('Backend.DirectRouting', `must be true or false, got ${JSON.stringify(drRaw)}`);
  return { type: 'vxlan', vni, port, directRouting: drRaw === true };
}

const WG_MODES: ReadonlyArray<WireguardConfig['mode']> = ['separate', 'auto', 'ipv4'];

function parseWireguard(v: JsonObject): WireguardConfig {
  const portRaw = jsonField(v, 'ListenPort');
  const listenPort = portRaw === undefined ? DEFAULT_WIREGUARD_PORT : integerField('Backend.ListenPort', portRaw);
  if (listenPort < 1 || listenPort > 65535) throw new NetworkConfigError('Backend.ListenPort', `must be between 1 and 65535 (got ${listenPort})`);
  const psk = jsonField(v, 'PSK');
  if (psk !== undefined && decodeKey(psk) === null) throw new NetworkConfigError('Backend.PSK', 'must be a base64 WireGuard key (32 bytes, as `wg genpsk` prints)');
  const kaRaw = jsonField(v, 'PersistentKeepaliveInterval');
  const keepalive = kaRaw === undefined ? 0 : integerField('Backend.PersistentKeepaliveInterval', kaRaw);
  if (keepalive < 0 || keepalive > 65535) throw new NetworkConfigError('Backend.PersistentKeepaliveInterval', `must be between 0 and 65535 seconds (got ${keepalive})`);
  const mode = jsonField(v, 'Mode') ?? 'separate';
  if (!WG_MODES.includes(mode as WireguardConfig['mode'])) {
    throw new NetworkConfigError('Backend.Mode', `must be one of ${WG_MODES.map((m) => JSON.stringify(m)).join(', ')} (twill has no IPv6), got ${JSON.stringify(mode)}`);
  }
  return { type: 'wireguard', listenPort, psk: psk as string | undefined, keepalive, mode: mode as WireguardConfig['mode'] };
}

function formatBackend(b: BackendConfig): object {
  if (b.type === 'vxlan') return { Type: 'vxlan', VNI: b.vni, Port: b.port, ...(b.directRouting ? { DirectRouting: true } : {}) };
  if (b.type === 'wireguard') {
    return { Type: 'wireguard', ListenPort: b.listenPort, ...(b.psk ? { PSK: b.psk } : {}), PersistentKeepaliveInterval: b.keepalive, Mode: b.mode };
  }
  return { Type: b.type };
}

export function parseNetworkConfig(text: string): NetworkConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new NetworkConfigError('(json)', 'is not valid JSON', { cause: err });
  }
  if (!isJsonObject(doc)) throw new NetworkConfigError('(json)', 'must be a JSON object');

  const network = parseNetwork(jsonField(doc, 'Network'));
  const subnetLen = parseSubnetLen(jsonField(doc, 'SubnetLen'), network);
  const subnetSize = 2 ** (32 - subnetLen);

  const minRaw = jsonField(doc, 'SubnetMin');
  let subnetMin = minRaw === undefined ? 0 : ipField('SubnetMin', minRaw);
  if (subnetMin === 0) {
    subnetMin = network.ip + subnetSize;
  } else if (!ipInPrefix(subnetMin, network)) {
    throw new NetworkConfigError('SubnetMin', `${formatIp4(subnetMin)} is not inside Network ${formatPrefix4(network)}`);
  }

  const maxRaw = jsonField(doc, 'SubnetMax');
  let subnetMax = maxRaw === undefined ? 0 : ipField('SubnetMax', maxRaw);
  if (subnetMax === 0) {
    subnetMax = network.ip + prefixSize(network) - subnetSize;
  } else if (!ipInPrefix(subnetMax, network)) {
    throw new NetworkConfigError('SubnetMax', `${formatIp4(subnetMax)} is not inside Network ${formatPrefix4(network)}`);
  }

  const mask = maskOf(subnetLen);
  if ((subnetMin & mask) >>> 0 !== subnetMin) {
    throw new NetworkConfigError('SubnetMin', `${formatIp4(subnetMin)} is not on a /${subnetLen} (SubnetLen) boundary`);
  }
  if ((subnetMax & mask) >>> 0 !== subnetMax) {
    throw new NetworkConfigError('SubnetMax', `${formatIp4(subnetMax)} is not on a /${subnetLen} (SubnetLen) boundary`);
  }

  const backend = parseBackend(jsonField(doc, 'Backend'));
  return { network, subnetLen, subnetMin, subnetMax, backend };
}

/** The config in flannel's JSON form (all defaults spelled out), e.g. for `twillctl` or tests. */
export function formatNetworkConfig(c: NetworkConfig): string {
  return JSON.stringify({
    Network: formatPrefix4(c.network),
    SubnetLen: c.subnetLen,
    SubnetMin: formatIp4(c.subnetMin),
    SubnetMax: formatIp4(c.subnetMax),
    Backend: formatBackend(c.backend),
  });
}
