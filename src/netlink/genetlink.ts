// Generic netlink (NETLINK_GENERIC) messages: nlmsghdr + genlmsghdr (cmd u8, version u8, 2
// reserved bytes) + attributes, and resolving a family's id by name through the controller
// (GENL_ID_CTRL, CTRL_CMD_GETFAMILY). Pure: bytes in, bytes out. A family's own attributes
// come from its codec (wg-codec.ts for "wireguard"); the socket is genl-socket.ts.
// The kernel loads a family's module on CTRL_CMD_GETFAMILY if it can, so asking for the id is
// also the cheapest "does this kernel have X" probe (ENOENT: no such family).
import { parseAttrs, strAttr } from './attrs';
import { Flags, HEADER_LENGTH } from './frame';

export const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_VERSION = 1;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
export const GENL_HEADER_LENGTH = 4;

/**
 * A whole message to family `familyId`. The length is exactly header + body: the attributes
 * come padded between each other and the last needs no padding, so none is added.
 */
export function genlMessage(familyId: number, flags: number, seq: number, cmd: number, version: number, attrs: readonly Uint8Array[]): Buffer {
  const body = Buffer.concat([Buffer.from([cmd, version, 0, 0]), ...attrs]);
  const hdr = Buffer.alloc(HEADER_LENGTH);
  hdr.writeUInt32LE(HEADER_LENGTH + body.length, 0);
  hdr.writeUInt16LE(familyId, 4);
  hdr.writeUInt16LE(flags, 6);
  hdr.writeUInt32LE(seq >>> 0, 8);
  return Buffer.concat([hdr, body]);
}

/** CTRL_CMD_GETFAMILY by name: the answer carries the family id; an ACK follows it (the exchange ends there). */
export function familyRequest(seq: number, family: string): Buffer {
  return genlMessage(GENL_ID_CTRL, Flags.REQUEST | Flags.ACK, seq, CTRL_CMD_GETFAMILY, CTRL_VERSION, [strAttr(CTRL_ATTR_FAMILY_NAME, family)]);
}

/** The family id in a CTRL_CMD_NEWFAMILY answer body (after nlmsghdr), or undefined. */
export function familyIdOf(body: Buffer): number | undefined {
  const id = parseAttrs(body, GENL_HEADER_LENGTH).get(CTRL_ATTR_FAMILY_ID);
  return id && id.length >= 2 ? id.readUInt16LE(0) : undefined;
}

/** A message body's attributes (what follows the genlmsghdr). */
export function genlAttrs(body: Buffer): Buffer {
  return body.subarray(GENL_HEADER_LENGTH);
}
