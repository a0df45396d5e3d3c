// The kernel WireGuard driver's messages: generic netlink, family "wireguard" (version 1),
// WG_CMD_SET_DEVICE / WG_CMD_GET_DEVICE, from the same diff the userspace driver sends as UAPI
// text. Generic netlink framing and family resolution are the seam's (src/netlink/genetlink.ts),
// the attributes come from the package's WireGuard encoder through src/netlink/wg-codec.ts.
// Pure: bytes in, bytes out; the family id is resolved by the caller (genl-socket.ts).
//
// Kernel facts encoded here (include/uapi/linux/wireguard.h): the endpoint is a struct
// sockaddr_in (family host-endian, port and address network order, 16 bytes); allowed IPs
// are nested {family, ipaddr, cidr_mask}; a peer to delete carries only its key and
// WGPEER_F_REMOVE_ME; a rewritten peer carries WGPEER_F_REPLACE_ALLOWEDIPS; a zero
// preshared key removes one. A netlink message has a size limit, so a large SET_DEVICE is
// split as wg(8) splits it: `maxPeers` per message, the device key in the first.
// The kernel's enum wg_cmd starts at 0 (GET 0, SET 1), not at the package's numbers.
// The driver that sends them is kernel-driver.ts; this kernel has no WireGuard to answer.
import { formatIp4, parseIp4 } from '../../ip/ipv4';
import { Flags } from '../../netlink/frame';
import { genlAttrs, genlMessage } from '../../netlink/genetlink';
import { encodeWgDevice, parseWgDevice, type WgDevice as Device, type WgPeer as Peer } from '../../netlink/wg-codec';
import type { WgPeerEntry } from '../../dataplane/model';
import type { DeviceDiff, WgDeviceState } from './device-diff';
import { decodeKey } from './key';

export const WG_GENL_NAME = 'wireguard';
export const WG_GENL_VERSION = 1;
export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;
const AF_INET = 2;
const ZERO_KEY = Buffer.alloc(32);

/** struct sockaddr_in for "a.b.c.d:port". */
export function sockaddrIn(endpoint: string): Buffer {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(endpoint);
  if (!m) throw new RangeError(`not an IPv4 endpoint: ${endpoint}`);
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(Number(m[2]), 2);
  b.writeUInt32BE(parseIp4(m[1]!), 4);
  return b;
}

function key(base64: string): Buffer {
  const k = decodeKey(base64);
  if (!k) throw new RangeError('not a WireGuard key');
  return k;
}

function peerOf(p: WgPeerEntry): Peer {
  return {
    publicKey: key(p.publicKey),
    presharedKey: p.presharedKey ? key(p.presharedKey) : ZERO_KEY,
    flags: { replaceAllowedIps: true },
    endpoint: sockaddrIn(p.endpoint),
    persistentKeepaliveInterval: p.keepalive,
    allowedIps: p.allowedIps.map((cidr) => {
      const [ip, len] = cidr.split('/');
      const addr = Buffer.alloc(4);
      addr.writeUInt32BE(parseIp4(ip!));
      return { family: AF_INET, ipaddr: addr, cidrMask: Number(len) };
    }),
  };
}

/** The SET_DEVICE payloads (Device objects) for a diff: removals first, `maxPeers` peers each. */
export function setDeviceObjects(ifname: string, diff: DeviceDiff, maxPeers = 64): Device[] {
  const peers: Peer[] = [...diff.remove.map((k): Peer => ({ publicKey: key(k), flags: { removeMe: true } })), ...diff.upsert.map(peerOf)];
  const out: Device[] = [];
  const head: Device = { ifname };
  if (diff.privateKeyHex !== undefined) head.privateKey = Buffer.from(diff.privateKeyHex, 'hex');
  if (diff.listenPort !== undefined) head.listenPort = diff.listenPort;
  for (let i = 0; i === 0 || i < peers.length; i += maxPeers) {
    const chunk = peers.slice(i, i + maxPeers);
    const dev: Device = i === 0 ? { ...head } : { ifname };
    if (chunk.length > 0) dev.peers = chunk;
    if (i === 0 && chunk.length === 0 && head.privateKey === undefined && head.listenPort === undefined) return [];
    out.push(dev);
  }
  return out;
}

/** A whole netlink message: nlmsghdr + genlmsghdr + the device's attributes. */
export function setDeviceMessage(familyId: number, seq: number, d: Device): Buffer {
  return genlMessage(familyId, Flags.REQUEST | Flags.ACK, seq, WG_CMD_SET_DEVICE, WG_GENL_VERSION, encodeWgDevice(d));
}

export function getDeviceMessage(familyId: number, seq: number, ifname: string): Buffer {
  return genlMessage(familyId, Flags.REQUEST | Flags.DUMP, seq, WG_CMD_GET_DEVICE, WG_GENL_VERSION, encodeWgDevice({ ifname }));
}

/** The Device in a WireGuard message body (after nlmsghdr: genlmsghdr, then attributes). */
export function parseDeviceBody(body: Buffer): Device {
  return parseWgDevice(genlAttrs(body));
}

/** The Device in a whole WireGuard message. */
export function parseDeviceMessage(msg: Buffer): Device {
  return parseDeviceBody(msg.subarray(16, msg.readUInt32LE(0)));
}

function endpointOf(sa: Buffer | undefined): string {
  if (!sa || sa.length < 8 || sa.readUInt16LE(0) !== AF_INET) return '';
  return `${formatIp4(sa.readUInt32BE(4))}:${sa.readUInt16BE(2)}`;
}

const isZero = (b: Buffer | undefined): boolean => !b || b.every((x) => x === 0);

/**
 * The device state from a GET_DEVICE dump. A device with many peers comes in several
 * messages, and one peer's allowed IPs may continue in the next with its key repeated.
 */
export function deviceState(parts: readonly Device[]): WgDeviceState {
  const st: WgDeviceState = { privateKeyHex: undefined, listenPort: 0, peers: new Map() };
  for (const d of parts) {
    if (d.privateKey && !isZero(d.privateKey)) st.privateKeyHex = d.privateKey.toString('hex');
    if (d.listenPort !== undefined) st.listenPort = d.listenPort;
    for (const p of d.peers ?? []) {
      if (!p.publicKey) continue;
      const key = p.publicKey.toString('base64');
      const entry = st.peers.get(key) ?? { publicKey: key, endpoint: '', allowedIps: [], keepalive: 0, presharedKey: undefined };
      if (p.endpoint) entry.endpoint = endpointOf(p.endpoint);
      if (p.persistentKeepaliveInterval !== undefined) entry.keepalive = p.persistentKeepaliveInterval;
      if (p.presharedKey) entry.presharedKey = isZero(p.presharedKey) ? undefined : p.presharedKey.toString('base64');
      for (const a of p.allowedIps ?? []) if (a.family === AF_INET && a.ipaddr) entry.allowedIps.push(`${formatIp4(a.ipaddr.readUInt32BE(0))}/${a.cidrMask}`);
      st.peers.set(key, entry);
    }
  }
  for (const p of st.peers.values()) p.allowedIps.sort();
  return st;
}
