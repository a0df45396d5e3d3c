// Hand-written encoders/decoders for the three message kinds twill writes and reads by the
// ten thousand: IPv4 routes, neighbours and FDB entries. The `netlink` package's generic
// codecs (used for everything else) cost ~10–20 µs per message; at 10,000 peers that is
// 30,000 messages per cold start and again per event echo. These fixed layouts are simple:
//   rtmsg  = family u8, dst_len u8, src_len u8, tos u8, table u8, protocol u8, scope u8, type u8, flags u32
//   ndmsg  = family u8, pad u8, pad u16, ifindex s32, state u16, flags u8, type u8
// followed by attributes (u16 len, u16 type, payload padded to 4 bytes). Host byte order.
import { readIp4, readMac, writeIp4, writeMac } from '../ip/bytes';
import type { FdbState, NeighState, RouteState } from './types';

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_TABLE = 15;
const NDA_DST = 1;
const NDA_LLADDR = 2;

/**
 * A zeroed buffer for one message body, carved from a zero-filled slab: Buffer.alloc makes an
 * ArrayBuffer per call, fill() has a per-call cost, and a cold start encodes 30,000 bodies.
 * Carved pieces are never handed out twice, so they stay zero until their encoder writes them.
 */
const SLAB_BYTES = 64 * 1024;
let slab = Buffer.alloc(0);
let slabUsed = 0;
function zeroed(size: number): Buffer {
  if (slabUsed + size > slab.length) {
    slab = Buffer.alloc(Math.max(SLAB_BYTES, size));
    slabUsed = 0;
  }
  const b = slab.subarray(slabUsed, slabUsed + size);
  slabUsed += (size + 7) & ~7;
  return b;
}

function attr(buf: Buffer, off: number, type: number, len: number): number {
  buf.writeUInt16LE(4 + len, off);
  buf.writeUInt16LE(type, off + 2);
  return off + 4;
}

export interface FastRoute {
  dst: string;
  dstLen: number;
  gateway: string | undefined;
  oif: number;
  protocol: number;
  scope: number;
  type: number;
  table: number;
  flags: number;
}

export function encodeRouteBody(r: FastRoute): Buffer {
  const buf = zeroed(12 + 8 + 8 + (r.gateway ? 8 : 0) + 8);
  buf[0] = 2; // AF_INET
  buf[1] = r.dstLen;
  buf[4] = r.table < 256 ? r.table : 252; // RT_TABLE_COMPAT; the real id goes in RTA_TABLE
  buf[5] = r.protocol;
  buf[6] = r.scope;
  buf[7] = r.type;
  buf.writeUInt32LE(r.flags >>> 0, 8);
  let off = 12;
  writeIp4(buf, attr(buf, off, RTA_DST, 4), r.dst);
  off += 8;
  buf.writeUInt32LE(r.oif >>> 0, attr(buf, off, RTA_OIF, 4));
  off += 8;
  if (r.gateway) {
    writeIp4(buf, attr(buf, off, RTA_GATEWAY, 4), r.gateway);
    off += 8;
  }
  buf.writeUInt32LE(r.table >>> 0, attr(buf, off, RTA_TABLE, 4));
  return buf;
}

export function encodeNeighBody(family: number, ifindex: number, state: number, flags: number, ip: string | undefined, mac: string | undefined): Buffer {
  const buf = zeroed(12 + (ip ? 8 : 0) + (mac ? 12 : 0));
  buf[0] = family;
  buf.writeInt32LE(ifindex, 4);
  buf.writeUInt16LE(state, 8);
  buf[10] = flags;
  let off = 12;
  if (ip) {
    writeIp4(buf, attr(buf, off, NDA_DST, 4), ip);
    off += 8;
  }
  if (mac) writeMac(buf, attr(buf, off, NDA_LLADDR, 6), mac);
  return buf;
}

/** Iterates attributes of `body` from `start`; the callback gets (type, payload offset, payload length). */
function eachAttr(body: Buffer, start: number, fn: (type: number, off: number, len: number) => void): void {
  let off = start;
  while (off + 4 <= body.length) {
    const len = body.readUInt16LE(off);
    if (len < 4 || off + len > body.length) return;
    fn(body.readUInt16LE(off + 2) & 0x3fff, off + 4, len - 4);
    off += (len + 3) & ~3;
  }
}

export function decodeRouteBody(body: Buffer): RouteState | undefined {
  if (body.length < 12 || body[0] !== 2) return undefined;
  let dst = '0.0.0.0';
  let gateway: string | undefined;
  let oif: number | undefined;
  let table = body[4]!;
  eachAttr(body, 12, (type, off, len) => {
    if (type === RTA_DST && len === 4) dst = readIp4(body, off);
    else if (type === RTA_GATEWAY && len === 4) gateway = readIp4(body, off);
    else if (type === RTA_OIF && len === 4) oif = body.readUInt32LE(off);
    else if (type === RTA_TABLE && len === 4) table = body.readUInt32LE(off);
  });
  return {
    dst,
    dstLen: body[1]!,
    gateway,
    oif,
    protocol: body[5]!,
    table,
    scope: body[6]!,
    type: body[7]!,
    onlink: (body.readUInt32LE(8) & 4) !== 0,
  };
}

function decodeNdmsg(body: Buffer): { family: number; index: number; state: number; flags: number; ip: string | undefined; mac: string | undefined } | undefined {
  if (body.length < 12) return undefined;
  let ip: string | undefined;
  let mac: string | undefined;
  eachAttr(body, 12, (type, off, len) => {
    if (type === NDA_DST && len === 4) ip = readIp4(body, off);
    else if (type === NDA_LLADDR && len === 6) mac = readMac(body, off);
  });
  return { family: body[0]!, index: body.readInt32LE(4), state: body.readUInt16LE(8), flags: body[10]!, ip, mac };
}

export function decodeNeighBody(body: Buffer): NeighState | undefined {
  const n = decodeNdmsg(body);
  if (!n || n.family !== 2 || !n.ip) return undefined;
  return { index: n.index, ip: n.ip, mac: n.mac, state: n.state };
}

export function decodeFdbBody(body: Buffer): FdbState | undefined {
  const n = decodeNdmsg(body);
  if (!n || n.family !== 7 || !n.mac) return undefined;
  return { index: n.index, mac: n.mac, dst: n.ip, state: n.state, self: (n.flags & 0x02) !== 0 };
}
