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
// Not wired to a socket yet: this kernel has no WireGuard module to test one against.
import { formatDevice, parseDevice, type Device, type Peer } from 'netlink/dist/wg/structs';
import { AttrStream } from 'netlink/dist/structs';
import { parseIp4 } from '../../ip/ipv4';
import type { WgPeerEntry } from '../../dataplane/model';
import type { DeviceDiff } from './device-diff';
import { decodeKey } from './key';

export const WG_GENL_NAME = 'wireguard';
export const WG_GENL_VERSION = 1;
export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;
const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
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

/** CTRL_CMD_GETFAMILY "wireguard": the answer carries the family id. */
export function familyRequest(seq: number): Buffer {
  const name = Buffer.from(`${WG_GENL_NAME}\0`);
  const attr = Buffer.alloc(4 + ((name.length + 3) & ~3));
  attr.writeUInt16LE(4 + name.length, 0);
  attr.writeUInt16LE(CTRL_ATTR_FAMILY_NAME, 2);
  name.copy(attr, 4);
  return message(GENL_ID_CTRL, NLM_F_REQUEST, seq, CTRL_CMD_GETFAMILY, 1, [attr]);
}

/** The Device in a WireGuard message (after nlmsghdr and genlmsghdr). */
export function parseDeviceMessage(msg: Buffer): Device {
  return parseDevice(msg.subarray(20, msg.readUInt32LE(0)));
}
