// Netlink message framing: header encode/decode, NLMSG_ERROR with extended-ack text, and the
// constants every rtnetlink user needs. No dependency on the `netlink` package, so a
// short-lived process (the CNI plugin) can use the socket layer without loading its codecs.
// Byte order: netlink headers use host order; twill targets little-endian hosts (x86_64, arm64).

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
const NLMSGERR_ATTR_MSG = 1;

export interface RawMessage {
  type: number;
  flags: number;
  seq: number;
  data: Buffer;
}

export function encodeMessage(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const len = HEADER_LENGTH + body.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq >>> 0, 8);
  body.copy(out, HEADER_LENGTH);
  return out;
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
      data: buf.subarray(off + HEADER_LENGTH, off + len),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

export interface DecodedError {
  /** Positive errno; 0 = ACK. */
  errno: number;
  message: string | undefined;
}

/** NLMSG_ERROR payload: -errno, the original header (+payload unless capped), then ext-ack TLVs. */
export function decodeError(m: RawMessage): DecodedError {
  const d = m.data;
  if (d.length < 4) return { errno: 0, message: undefined };
  const errno = -d.readInt32LE(0) || 0; // no -0 for an ACK
  let message: string | undefined;
  if (m.flags & Flags.ACK_TLVS && d.length >= 4 + HEADER_LENGTH) {
    let off = (4 + (m.flags & Flags.CAPPED ? HEADER_LENGTH : d.readUInt32LE(4)) + 3) & ~3;
    while (off + 4 <= d.length) {
      const alen = d.readUInt16LE(off);
      if (alen < 4 || off + alen > d.length) break;
      if ((d.readUInt16LE(off + 2) & 0x3fff) === NLMSGERR_ATTR_MSG) message = d.toString('utf8', off + 4, off + alen).replace(/\0+$/, '');
      off += (alen + 3) & ~3;
    }
  }
  return { errno, message };
}
