// Netlink attributes (struct nlattr): u16 length (header included, padding not), u16 type, the
// payload, padded to 4 bytes. Written by hand for the messages whose codecs are ours — the CNI
// plugin's rtnetlink requests, nf_tables set members, generic netlink — so that none of them
// loads the `netlink` package (its codecs take 25-40 ms to load, src/cni/rtnl-codec.ts).
// No dependencies. The CNI plugin builds every request from these: they allocate exactly one
// Buffer per attribute (plus the payload's), nothing more. Host byte order (little-endian).

/** Set on the type of an attribute that holds attributes (nf_tables requires it; rtnetlink ignores it). */
export const NLA_F_NESTED = 0x8000;
/** The type bits, without NLA_F_NESTED and NLA_F_NET_BYTEORDER. */
export const NLA_TYPE_MASK = 0x3fff;

export function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
export function u32Attr(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return attr(type, b);
}
export function u8Attr(type: number, v: number): Buffer {
  return attr(type, Buffer.from([v & 0xff]));
}
/** NUL-terminated string attribute (IFLA_IFNAME, IFLA_INFO_KIND, CTRL_ATTR_FAMILY_NAME, NFTA_*_TABLE). */
export function strAttr(type: number, s: string): Buffer {
  return attr(type, Buffer.from(`${s}\0`, 'utf8'));
}
/** An attribute holding `parts` (type as given: OR in NLA_F_NESTED where the subsystem wants it). */
export function nested(type: number, parts: Buffer[]): Buffer {
  return attr(type, Buffer.concat(parts));
}

/** Attributes of one level, by type (nested-flag and byte-order bits masked off). */
export function parseAttrs(buf: Buffer, start = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = start;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}
