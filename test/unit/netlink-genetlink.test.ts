// Generic netlink framing and the controller's family answer, checked byte-wise against the
// layouts of include/uapi/linux/netlink.h and genetlink.h (no kernel needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familyIdOf, familyRequest, genlAttrs, genlMessage } from '../../src/netlink/genetlink';
import { attr, NLA_F_NESTED, parseAttrs, strAttr, u32Attr } from '../../src/netlink/attrs';

const u16 = (v: number): Buffer => Buffer.from([v & 0xff, v >> 8]);

test('a generic netlink message: nlmsghdr with the exact length, genlmsghdr, the attributes as given', () => {
  const a = [strAttr(1, 'abc'), u32Attr(2, 0xdeadbeef)];
  const msg = genlMessage(0x1d, 0x305, 0xfffffffe, 7, 2, a);
  assert.equal(msg.length, 16 + 4 + 8 + 8);
  assert.deepEqual([msg.readUInt32LE(0), msg.readUInt16LE(4), msg.readUInt16LE(6), msg.readUInt32LE(8), msg.readUInt32LE(12)], [msg.length, 0x1d, 0x305, 0xfffffffe, 0]);
  assert.deepEqual([...msg.subarray(16, 20)], [7, 2, 0, 0]);
  const back = parseAttrs(genlAttrs(msg.subarray(16)));
  assert.equal(back.get(1)?.toString(), 'abc\0');
  assert.equal(back.get(2)?.readUInt32LE(0), 0xdeadbeef);
  // An unpadded last attribute (as the package's AttrStream leaves it) is not padded after.
  assert.equal(genlMessage(1, 0, 0, 0, 0, [Buffer.from([5, 0, 9, 0, 0xaa])]).readUInt32LE(0), 16 + 4 + 5);
});

test('CTRL_CMD_GETFAMILY by name; the family id read from CTRL_CMD_NEWFAMILY, wherever it stands', () => {
  const req = familyRequest(3, 'wireguard');
  // GENL_ID_CTRL, NLM_F_REQUEST|NLM_F_ACK, seq; CTRL_CMD_GETFAMILY, version 1; CTRL_ATTR_FAMILY_NAME.
  assert.deepEqual([req.readUInt16LE(4), req.readUInt16LE(6), req.readUInt32LE(8), req[16], req[17]], [0x10, 5, 3, 3, 1]);
  assert.equal(req.subarray(20).toString('hex'), '0e000200' + Buffer.from('wireguard\0').toString('hex') + '0000');
  // CTRL_CMD_NEWFAMILY body: genlmsghdr, FAMILY_NAME, FAMILY_ID (u16), a nested OPS list.
  const body = Buffer.concat([Buffer.from([1, 2, 0, 0]), strAttr(2, 'wireguard'), attr(1, u16(0x1d)), attr(6 | NLA_F_NESTED, attr(1, u32Attr(1, 0)))]);
  assert.equal(familyIdOf(body), 0x1d);
  assert.equal(familyIdOf(Buffer.concat([Buffer.from([1, 2, 0, 0]), strAttr(2, 'wireguard')])), undefined, 'no id attribute');
  assert.equal(familyIdOf(Buffer.concat([Buffer.from([1, 2, 0, 0]), attr(1, Buffer.from([7]))])), undefined, 'an id too short');
  assert.equal(familyIdOf(Buffer.from([1, 2, 0, 0, 2, 0, 1, 0])), undefined, 'a malformed attribute length');
});
