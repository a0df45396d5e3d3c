// The only importer of the `netlink` npm package. We use its pure-JS encoders/decoders and
// never its socket layer (it aborts the process on ENOBUFS and has no errno on errors; see
// shared/KERNEL-NOTES.md). Deep imports keep its native addon from ever being loaded.
// Byte order: netlink headers use host order; this code assumes a little-endian host
// (x86_64, arm64), which is every platform twill targets.
/* eslint-disable @typescript-eslint/no-require-imports */
import type * as RtStructs from 'netlink/dist/rt/structs';
import type * as Ifla from 'netlink/dist/rt/ifla';
import type * as Structs from 'netlink/dist/structs';

const rt = require('netlink/dist/rt/structs') as typeof RtStructs;
const ifla = require('netlink/dist/rt/ifla') as typeof Ifla;
const structs = require('netlink/dist/structs') as typeof Structs;

export type RtLink = RtStructs.Link;
export type RtLinkAttrs = Ifla.LinkAttrs;
export type RtAddress = RtStructs.Address;
export type RtAddressAttrs = RtStructs.AddressAttrs;
export type RtRoute = RtStructs.Route;
export type RtRouteAttrs = RtStructs.RouteAttrs;
export type RtNeighbor = RtStructs.Neighbor;
export type RtNeighborAttrs = RtStructs.NeighborAttrs;
export type VxlanAttrs = Ifla.Vxlan;

export const MsgType = {
  NOOP: 1,
  ERROR: 2,
  DONE: 3,
  OVERRUN: 4,
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
} as const;

export const Flags = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  DUMP_INTR: 0x10,
  DUMP: 0x300,
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
  // on NLMSG_ERROR
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
} as const;

export const HEADER_LENGTH = 16;

export function encodeBody(fill: (out: Structs.AttrStream) => void): Buffer {
  const out = new structs.AttrStream();
  fill(out);
  return Buffer.concat(out.bufs);
}

export function encodeLink(data: RtLink, attrs: RtLinkAttrs): Buffer {
  return encodeBody((out) => rt.formatLinkMessage({ kind: 'link', data, attrs }, out));
}
export function encodeAddress(data: RtAddress, attrs: RtAddressAttrs): Buffer {
  return encodeBody((out) => rt.formatAddressMessage({ kind: 'address', data, attrs }, out));
}
export function encodeRoute(data: RtRoute, attrs: RtRouteAttrs): Buffer {
  return encodeBody((out) => rt.formatRouteMessage({ kind: 'route', data, attrs }, out));
}
export function encodeNeighbor(data: RtNeighbor, attrs: RtNeighborAttrs): Buffer {
  return encodeBody((out) => rt.formatNeighborMessage({ kind: 'neighbor', data, attrs }, out));
}

/** IFLA_LINKINFO payload: kind plus its kind-specific data. */
export function encodeLinkInfo(kind: string, data?: Buffer): Buffer {
  return encodeBody((out) => out.emit(ifla.formatInfo({ kind, data })));
}
export function encodeVxlanData(v: VxlanAttrs): Buffer {
  return encodeBody((out) => out.emit(ifla.formatVxlan(v)));
}
/** VETH_INFO_PEER: an ifinfomsg plus the peer's own attributes (name, namespace fd, MTU...). */
export function encodeVethData(peer: RtLink, peerAttrs: RtLinkAttrs): Buffer {
  const peerBuf = encodeLink(peer, peerAttrs);
  return encodeBody((out) => out.emit(ifla.formatVethInfo({ peer: peerBuf })));
}

export function parseLink(body: Buffer) {
  return rt.parseLinkMessage(body);
}
export function parseLinkInfo(buf: Buffer) {
  return ifla.parseInfo(buf);
}
export function parseVxlan(buf: Buffer) {
  return ifla.parseVxlan(buf);
}
export function parseAddress(body: Buffer) {
  return rt.parseAddressMessage(body);
}
export function parseRoute(body: Buffer) {
  return rt.parseRouteMessage(body);
}
export function parseNeighbor(body: Buffer) {
  return rt.parseNeighborMessage(body);
}

export interface RawMessage {
  type: number;
  flags: number;
  seq: number;
  port: number;
  data: Buffer;
}

export function encodeMessage(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH);
  const len = HEADER_LENGTH + body.length;
  header.writeUInt32LE(len, 0);
  header.writeUInt16LE(type, 4);
  header.writeUInt16LE(flags, 6);
  header.writeUInt32LE(seq >>> 0, 8);
  header.writeUInt32LE(0, 12);
  const pad = (4 - (len % 4)) % 4;
  return pad ? Buffer.concat([header, body, Buffer.alloc(pad)]) : Buffer.concat([header, body]);
}

/** Splits one datagram into messages; a malformed length stops parsing instead of throwing. */
export function decodeMessages(buf: Buffer): RawMessage[] {
  const out: RawMessage[] = [];
  let off = 0;
  while (off + HEADER_LENGTH <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < HEADER_LENGTH || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      port: buf.readUInt32LE(off + 12),
      data: buf.subarray(off + HEADER_LENGTH, off + len),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

export interface DecodedError {
  errno: number; // positive; 0 = ACK
  seq: number;
  message: string | undefined;
}

/** NLMSG_ERROR payload: -errno, the original header (+payload unless capped), then ext-ack TLVs. */
export function decodeError(msg: RawMessage): DecodedError {
  const d = msg.data;
  if (d.length < 4 + HEADER_LENGTH) return { errno: 0, seq: msg.seq, message: undefined };
  const errno = -d.readInt32LE(0);
  let message: string | undefined;
  if (msg.flags & Flags.ACK_TLVS) {
    const origLen = d.readUInt32LE(4);
    let off = 4 + ((msg.flags & Flags.CAPPED) ? HEADER_LENGTH : origLen);
    off = (off + 3) & ~3;
    while (off + 4 <= d.length) {
      const alen = d.readUInt16LE(off);
      const atype = d.readUInt16LE(off + 2) & 0x3fff;
      if (alen < 4 || off + alen > d.length) break;
      if (atype === 1) message = d.toString('utf8', off + 4, off + alen).replace(/\0+$/, '');
      off += (alen + 3) & ~3;
    }
  }
  return { errno, seq: msg.seq, message };
}

/** The package decodes enum fields to their names when it knows them: map back to numbers. */
function enumNum(e: Record<string, string | number>, v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const n = e[v];
    if (typeof n === 'number') return n;
  }
  return 0;
}
export function routeScopeNum(v: unknown): number {
  return enumNum(rt.RouteScope as unknown as Record<string, number>, v);
}
export function routeTypeNum(v: unknown): number {
  return enumNum(rt.RouteType as unknown as Record<string, number>, v);
}
export function routeProtocolNum(v: unknown): number {
  return enumNum(rt.RouteProtocol as unknown as Record<string, number>, v);
}
