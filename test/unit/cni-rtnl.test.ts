// The plugin's hand-written rtnetlink encoders/decoders, cross-checked against the `netlink`
// package's codecs that the rest of twill uses (src/netlink/codec.ts). No sockets, no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build, decodeAddr, decodeError, decodeLink, decodeMessages, decodeRoute, encodeMessage, RTM, NLM_F } from '../../src/cni/rtnl-codec';
import { parseAttrs } from '../../src/netlink/attrs';
import * as codec from '../../src/netlink/codec';

const mac = (s: string) => Buffer.from(s.split(':').map((x) => parseInt(x, 16)));

test('veth creation is byte-identical to the package encoding of the same request', () => {
  const mine = build.vethCreate({ name: 'tw0123456789a', mac: '0e:00:00:00:00:01', mtu: 1450, master: 7, peerName: 'eth0', peerMac: '0a:58:0a:f4:07:09', peerNetnsFd: 5 });
  const peer = codec.encodeVethData({ family: 0 }, { ifname: 'eth0', mtu: 1450, address: mac('0a:58:0a:f4:07:09'), netNsFd: 5 });
  const theirs = codec.encodeLink(
    { family: 0, flags: { up: true }, change: { up: true } },
    { ifname: 'tw0123456789a', mtu: 1450, address: mac('0e:00:00:00:00:01'), master: 7, linkinfo: codec.encodeLinkInfo('veth', peer) },
  );
  assert.equal(mine.body.toString('hex'), theirs.toString('hex'));
  assert.equal(mine.type, RTM.NEWLINK);
  assert.equal(mine.flags, NLM_F.CREATE | NLM_F.EXCL);
});

test('bridge creation, link set and delete by name decode with the package parser', () => {
  const br = codec.parseLink(build.bridgeCreate('twill0', 1450, '0a:58:0a:f4:07:01').body);
  assert.equal(br.attrs.ifname, 'twill0');
  assert.equal(br.attrs.mtu, 1450);
  assert.deepEqual(br.attrs.address, mac('0a:58:0a:f4:07:01'));
  assert.equal(codec.parseLinkInfo(br.attrs.linkinfo!).kind, 'bridge');
  assert.ok(br.data.flags?.up);

  const set = codec.parseLink(build.linkSet('lo', { up: true, mtu: 9000 }).body);
  assert.equal(set.data.index, 0);
  assert.equal(set.attrs.ifname, 'lo');
  assert.equal(set.attrs.mtu, 9000);
  assert.ok(set.data.flags?.up && set.data.change?.up);
  const down = codec.parseLink(build.linkSet('x', { up: false }).body);
  assert.ok(!down.data.flags?.up && down.data.change?.up);

  const del = build.linkDelete('tw0123456789a');
  assert.equal(del.type, RTM.DELLINK);
  assert.equal(codec.parseLink(del.body).attrs.ifname, 'tw0123456789a');
});

test('address and route requests match the package encoding', () => {
  const addr = build.addrReplace(4, '10.244.7.2', 24);
  const theirsAddr = codec.encodeAddress({ family: 2, prefixlen: 24, index: 4, scope: 0 }, { local: Buffer.from([10, 244, 7, 2]), address: Buffer.from([10, 244, 7, 2]) });
  assert.equal(addr.body.toString('hex'), theirsAddr.toString('hex'));
  assert.equal(addr.flags, NLM_F.CREATE | NLM_F.REPLACE);

  const route = codec.parseRoute(build.routeReplace({ dst: '0.0.0.0', dstLen: 0, gateway: '10.244.7.1', oif: 4 }).body);
  assert.equal(route.data.dstLen, 0);
  assert.equal(route.data.table, 254);
  assert.deepEqual(route.attrs.gateway, Buffer.from([10, 244, 7, 1]));
  assert.equal(route.attrs.oif, 4);
  assert.equal(route.attrs.dst, undefined);
  const net = codec.parseRoute(build.routeReplace({ dst: '10.244.0.0', dstLen: 16, gateway: '10.244.7.1', oif: 4 }).body);
  assert.deepEqual(net.attrs.dst, Buffer.from([10, 244, 0, 0]));
});

test('hairpin request carries IFLA_INFO_SLAVE_KIND bridge and IFLA_BRPORT_MODE', () => {
  const b = build.bridgePortHairpin('tw0123456789a', true).body;
  const attrs = parseAttrs(b, 16);
  const info = parseAttrs(attrs.get(18)!);
  assert.equal(info.get(4)!.toString(), 'bridge\0');
  assert.deepEqual([...parseAttrs(info.get(5)!).get(4)!], [1]);
});

test('decoders read messages the package encodes', () => {
  const link = codec.encodeLink(
    { family: 0, index: 12, flags: { up: true } },
    { ifname: 'twill0', mtu: 1450, address: mac('0a:58:0a:f4:07:01'), master: 3, linkinfo: codec.encodeLinkInfo('bridge') },
  );
  assert.deepEqual(decodeLink(link), { index: 12, name: 'twill0', kind: 'bridge', mtu: 1450, up: true, mac: '0a:58:0a:f4:07:01', master: 3 });
  const addr = codec.encodeAddress({ family: 2, prefixlen: 24, index: 5 }, { local: Buffer.from([10, 0, 0, 2]), address: Buffer.from([10, 0, 0, 2]) });
  assert.deepEqual(decodeAddr(addr), { index: 5, ip: '10.0.0.2', prefixLen: 24 });
  assert.equal(decodeAddr(codec.encodeAddress({ family: 10, prefixlen: 64, index: 5 }, {})), undefined);
  const route = codec.encodeRoute({ family: 2, dstLen: 0, table: 254, protocol: 3, scope: 0, type: 1 }, { gateway: Buffer.from([10, 0, 0, 1]), oif: 5 });
  assert.deepEqual(decodeRoute(route), { dst: '0.0.0.0', dstLen: 0, gateway: '10.0.0.1', oif: 5, table: 254 });
});

test('message framing round-trips; truncated or garbage input never throws', () => {
  const a = encodeMessage(RTM.NEWLINK, 0, 7, Buffer.from([1, 2, 3]));
  const b = encodeMessage(RTM.DELLINK, 2, 8, Buffer.alloc(0));
  const msgs = decodeMessages(Buffer.concat([a, b]));
  assert.deepEqual(msgs.map((m) => [m.type, m.flags, m.seq, m.data.length]), [[16, 0, 7, 3], [17, 2, 8, 0]]);
  assert.deepEqual(decodeMessages(a.subarray(0, 10)), []);
  for (let i = 0; i < 200; i++) {
    const junk = Buffer.from(Array.from({ length: (i % 40) + 1 }, () => Math.floor(Math.random() * 256)));
    decodeMessages(junk);
    parseAttrs(junk);
  }
});

test('error messages: errno and the kernel extended-ack text', () => {
  // NLMSG_ERROR, capped + ack TLVs: -errno, original header, then NLMSGERR_ATTR_MSG.
  const orig = Buffer.alloc(16);
  const text = Buffer.from('Unknown device type\0');
  const tlv = Buffer.alloc((4 + text.length + 3) & ~3);
  tlv.writeUInt16LE(4 + text.length, 0);
  tlv.writeUInt16LE(1, 2);
  text.copy(tlv, 4);
  const data = Buffer.concat([Buffer.from(new Int32Array([-95]).buffer), orig, tlv]);
  assert.deepEqual(decodeError({ type: 2, flags: 0x300, seq: 1, data }), { errno: 95, message: 'Unknown device type' });
  assert.deepEqual(decodeError({ type: 2, flags: 0, seq: 1, data: Buffer.from(new Int32Array([0]).buffer) }), { errno: 0, message: undefined });
});
