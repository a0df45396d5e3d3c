// The WireGuard cross-platform UAPI (wireguard.com/xplatform): a line protocol over the unix
// socket /var/run/wireguard/<ifname>.sock. "get=1\n\n" answers key=value lines (device
// first, then one block per peer opened by public_key=) and "errno=0\n\n"; "set=1\n...\n\n"
// applies a transaction and answers errno. Keys are hex on this protocol, base64 in leases.
// Pure: what to ask, how to read the answer, and the set transaction that takes the device
// from what it has to what is desired (only the differences; a peer whose endpoint, keepalive,
// PSK or allowed IPs differ is rewritten with replace_allowed_ips, one not wanted is removed).
import type { WgPeerEntry } from '../../dataplane/model';
import { encodeKey, keyHex } from './key';

export const UAPI_GET = 'get=1\n\n';

export interface WgDeviceState {
  /** Hex; undefined when the device has none. */
  privateKeyHex: string | undefined;
  listenPort: number;
  /** By base64 public key. */
  peers: Map<string, WgPeerEntry>;
}

export class UapiError extends Error {
  readonly code = 'ERR_WG_UAPI' as const;
  constructor(message: string, readonly errno?: number) {
    super(message);
    this.name = 'UapiError';
  }
}

const ZERO_KEY = '0'.repeat(64);

/** The answer to get=1 as a device state. Throws UapiError on errno != 0 or a malformed answer. */
export function parseGet(text: string): WgDeviceState {
  const dev: WgDeviceState = { privateKeyHex: undefined, listenPort: 0, peers: new Map() };
  let peer: WgPeerEntry | undefined;
  let errno: number | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new UapiError(`malformed UAPI line ${JSON.stringify(line)}`);
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1);
    if (k === 'errno') errno = Number(v);
    else if (k === 'public_key') {
      peer = { publicKey: encodeKey(Buffer.from(v, 'hex')), endpoint: '', allowedIps: [], keepalive: 0, presharedKey: undefined };
      dev.peers.set(peer.publicKey, peer);
    } else if (!peer) {
      if (k === 'private_key') dev.privateKeyHex = v === ZERO_KEY ? undefined : v;
      else if (k === 'listen_port') dev.listenPort = Number(v);
    } else if (k === 'endpoint') peer.endpoint = v;
    else if (k === 'allowed_ip') peer.allowedIps.push(v);
    else if (k === 'persistent_keepalive_interval') peer.keepalive = Number(v);
    else if (k === 'preshared_key') peer.presharedKey = v === ZERO_KEY ? undefined : encodeKey(Buffer.from(v, 'hex'));
  }
  if (errno === undefined) throw new UapiError('UAPI answer without errno');
  if (errno !== 0) throw new UapiError(`UAPI get failed: errno ${errno}`, errno);
  for (const p of dev.peers.values()) p.allowedIps.sort();
  return dev;
}

/** errno of a set answer; throws UapiError unless 0. */
export function checkSetAnswer(text: string): void {
  const m = /^errno=(-?[0-9]+)$/m.exec(text);
  if (!m) throw new UapiError('UAPI answer without errno');
  if (Number(m[1]) !== 0) throw new UapiError(`UAPI set failed: errno ${m[1]}`, Number(m[1]));
}

export function samePeer(a: WgPeerEntry, b: WgPeerEntry): boolean {
  return (
    a.endpoint === b.endpoint &&
    a.keepalive === b.keepalive &&
    a.presharedKey === b.presharedKey &&
    a.allowedIps.length === b.allowedIps.length &&
    a.allowedIps.every((ip, i) => ip === b.allowedIps[i])
  );
}

export interface DesiredDevice {
  privateKeyHex: string;
  listenPort: number;
  peers: ReadonlyMap<string, WgPeerEntry>;
}

export interface SetPlan {
  /** The transaction, or null when the device is as desired. */
  text: string | null;
  writes: number;
  deletes: number;
  /** The device's key or port changed. */
  device: boolean;
}

/** The set transaction from `actual` to `desired`. */
export function planSet(desired: DesiredDevice, actual: WgDeviceState): SetPlan {
  const lines: string[] = [];
  let device = false;
  if (actual.privateKeyHex !== desired.privateKeyHex) {
    lines.push(`private_key=${desired.privateKeyHex}`);
    device = true;
  }
  if (actual.listenPort !== desired.listenPort) {
    lines.push(`listen_port=${desired.listenPort}`);
    device = true;
  }
  let deletes = 0;
  for (const key of actual.peers.keys()) {
    if (desired.peers.has(key)) continue;
    lines.push(`public_key=${keyHex(key)}`, 'remove=true');
    deletes++;
  }
  let writes = 0;
  for (const [key, want] of desired.peers) {
    const have = actual.peers.get(key);
    if (have && samePeer(have, want)) continue;
    lines.push(`public_key=${keyHex(key)}`);
    lines.push(`preshared_key=${want.presharedKey ? keyHex(want.presharedKey) : ZERO_KEY}`);
    lines.push(`endpoint=${want.endpoint}`);
    lines.push(`persistent_keepalive_interval=${want.keepalive}`);
    lines.push('replace_allowed_ips=true');
    for (const ip of want.allowedIps) lines.push(`allowed_ip=${ip}`);
    writes++;
  }
  if (lines.length === 0) return { text: null, writes, deletes, device };
  return { text: `set=1\n${lines.join('\n')}\n\n`, writes, deletes, device };
}
