// What must change on a WireGuard device to match the desired state, whichever driver applies
// it (the UAPI text of uapi-text.ts, the generic netlink messages of wg-messages.ts). Pure.
// A peer whose endpoint, keepalive, PSK or allowed IPs differ is written whole (its allowed
// IPs replaced); a peer not desired is removed; the key and port only when they differ.
import type { WgPeerEntry } from '../../dataplane/model';

export interface WgDeviceState {
  /** Hex; undefined when the device has none. */
  privateKeyHex: string | undefined;
  listenPort: number;
  /** By base64 public key. */
  peers: Map<string, WgPeerEntry>;
}

export interface DesiredDevice {
  privateKeyHex: string;
  listenPort: number;
  peers: ReadonlyMap<string, WgPeerEntry>;
}

export interface DeviceDiff {
  /** Set when the device's key must change (hex). */
  privateKeyHex?: string;
  listenPort?: number;
  /** Base64 public keys of peers to remove. */
  remove: string[];
  /** Peers to add or rewrite whole. */
  upsert: WgPeerEntry[];
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

export function diffDevice(desired: DesiredDevice, actual: WgDeviceState): DeviceDiff {
  const d: DeviceDiff = { remove: [], upsert: [] };
  if (actual.privateKeyHex !== desired.privateKeyHex) d.privateKeyHex = desired.privateKeyHex;
  if (actual.listenPort !== desired.listenPort) d.listenPort = desired.listenPort;
  for (const key of actual.peers.keys()) if (!desired.peers.has(key)) d.remove.push(key);
  for (const [key, want] of desired.peers) {
    const have = actual.peers.get(key);
    if (!have || !samePeer(have, want)) d.upsert.push(want);
  }
  return d;
}

export const diffIsEmpty = (d: DeviceDiff): boolean =>
  d.privateKeyHex === undefined && d.listenPort === undefined && d.remove.length === 0 && d.upsert.length === 0;
