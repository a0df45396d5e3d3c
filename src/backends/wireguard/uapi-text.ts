// The WireGuard cross-platform UAPI (wireguard.com/xplatform): a line protocol over the unix
// socket /var/run/wireguard/<ifname>.sock. "get=1\n\n" answers key=value lines (device
// first, then one block per peer opened by public_key=) and "errno=0\n\n"; "set=1\n...\n\n"
// applies a transaction and answers errno. Keys are hex on this protocol, base64 in leases.
// Pure: what to ask, how to read the answer, and the set transaction that takes the device
// from what it has to what is desired (only the differences; a peer whose endpoint, keepalive,
// PSK or allowed IPs differ is rewritten with replace_allowed_ips, one not wanted is removed;
// the diff itself is device-diff.ts, shared with the kernel driver's messages).
import type { WgPeerEntry } from '../../dataplane/model';
import type { DeviceDiff, WgDeviceState } from './device-diff';
import { encodeKey, keyHex } from './key';
import { TwillError } from '../../base/twill-error';

export const UAPI_GET = 'get=1\n\n';

export class UapiError extends TwillError<'ERR_WG_UAPI'> {
  constructor(message: string, readonly errno?: number) {
    super('ERR_WG_UAPI', message);
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

/** The set transaction for a diff (see device-diff.ts), or null when there is nothing to do. */
export function formatSet(d: DeviceDiff): string | null {
  const lines: string[] = [];
  if (d.privateKeyHex !== undefined) lines.push(`private_key=${d.privateKeyHex}`);
  if (d.listenPort !== undefined) lines.push(`listen_port=${d.listenPort}`);
  for (const key of d.remove) lines.push(`public_key=${keyHex(key)}`, 'remove=true');
  for (const p of d.upsert) {
    lines.push(`public_key=${keyHex(p.publicKey)}`);
    lines.push(`preshared_key=${p.presharedKey ? keyHex(p.presharedKey) : ZERO_KEY}`);
    lines.push(`endpoint=${p.endpoint}`);
    lines.push(`persistent_keepalive_interval=${p.keepalive}`);
    lines.push('replace_allowed_ips=true');
    for (const ip of p.allowedIps) lines.push(`allowed_ip=${ip}`);
  }
  return lines.length === 0 ? null : `set=1\n${lines.join('\n')}\n\n`;
}
