// The kernel WireGuard driver's messages: generic netlink, family "wireguard" (version 1),
// WG_CMD_SET_DEVICE / WG_CMD_GET_DEVICE, built with the `netlink` package's WireGuard encoder
// (netlink/dist/wg) from the same diff the userspace driver sends as UAPI text. Pure: bytes in,
// bytes out; the family id is resolved by the caller (CTRL_CMD_GETFAMILY, see familyRequest).
//
// Kernel facts encoded here (include/uapi/linux/wireguard.h): the endpoint is a struct
// sockaddr_in (family host-endian, port and address network order, 16 bytes); allowed IPs
// are nested {family, ipaddr, cidr_mask}; a peer to delete carries only its key and
// WGPEER_F_REMOVE_ME; a rewritten peer carries WGPEER_F_REPLACE_ALLOWEDIPS; a zero
// preshared key removes one. A netlink message has a size limit, so a large SET_DEVICE is
// split as wg(8) splits it: `maxPeers` per message, the device key in the first.
// This file is the one adapter to the package's WireGuard structs (src/netlink/codec.ts is
// the adapter for its rtnetlink ones).
// The package's own Commands enum says GET_DEVICE = 1, SET_DEVICE = 2; the kernel's enum wg_cmd
// starts at 0 (GET 0, SET 1): its numbers are not used, the kernel's are, below.
// The socket that sends them is kernel-driver.ts; this kernel has no WireGuard to answer.
import { formatDevice, parseDevice, type Device, type Peer } from 'netlink/dist/wg/structs';
import { AttrStream } from 'netlink/dist/structs';
import { formatIp4, parseIp4 } from '../../ip/ipv4';
import type { WgPeerEntry } from '../../dataplane/model';
import type { DeviceDiff, WgDeviceState } from './device-diff';
import { decodeKey } from './key';

export const WG_GENL_NAME = 'wireguard';
export const WG_GENL_VERSION = 1;
export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;
const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NLM_F_DUMP = 0x300;
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

function message(type: number, flags: number, seq: number, cmd: number, version: number, attrs: Uint8Array[]): Buffer {
  const body = Buffer.concat([Buffer.from([cmd, version, 0, 0]), ...attrs]);
  const hdr = Buffer.alloc(16);
  hdr.writeUInt32LE(16 + body.length, 0);
  hdr.writeUInt16LE(type, 4);
  hdr.writeUInt16LE(flags, 6);
  hdr.writeUInt32LE(seq >>> 0, 8);
  return Buffer.concat([hdr, body]);
}

function deviceAttrs(d: Device): Uint8Array[] {
  const s = new AttrStream();
  s.emit(formatDevice(d));
  return s.bufs;
}

/** A whole netlink message: nlmsghdr + genlmsghdr + the device's attributes. */
export function setDeviceMessage(familyId: number, seq: number, d: Device): Buffer {
  return message(familyId, NLM_F_REQUEST | NLM_F_ACK, seq, WG_CMD_SET_DEVICE, WG_GENL_VERSION, deviceAttrs(d));
}

export function getDeviceMessage(familyId: number, seq: number, ifname: string): Buffer {
  return message(familyId, NLM_F_REQUEST | NLM_F_DUMP, seq, WG_CMD_GET_DEVICE, WG_GENL_VERSION, deviceAttrs({ ifname }));
}

/** CTRL_CMD_GETFAMILY "wireguard": the answer carries the family id; an ACK follows it (the exchange ends there). */
export function familyRequest(seq: number, family = WG_GENL_NAME): Buffer {
  const name = Buffer.from(`${family}\0`);
  const attr = Buffer.alloc(4 + ((name.length + 3) & ~3));
  attr.writeUInt16LE(4 + name.length, 0);
  attr.writeUInt16LE(CTRL_ATTR_FAMILY_NAME, 2);
  name.copy(attr, 4);
  return message(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, CTRL_CMD_GETFAMILY, 1, [attr]);
}

/** The Device in a WireGuard message body (after nlmsghdr: genlmsghdr, then attributes). */
export function parseDeviceBody(body: Buffer): Device {
  return parseDevice(body.subarray(4));
}

/** The Device in a whole WireGuard message. */
export function parseDeviceMessage(msg: Buffer): Device {
  return parseDeviceBody(msg.subarray(16, msg.readUInt32LE(0)));
}

/** The family id in a CTRL_CMD_NEWFAMILY answer body, or undefined. */
export function familyIdOf(body: Buffer): number | undefined {
  for (let off = 4; off + 4 <= body.length; ) {
    const len = body.readUInt16LE(off);
    if (len < 4) return undefined;
    if ((body.readUInt16LE(off + 2) & 0x3fff) === CTRL_ATTR_FAMILY_ID && len >= 6) return body.readUInt16LE(off + 4);
    off += (len + 3) & ~3;
  }
  return undefined;
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
