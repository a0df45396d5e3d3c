// The hand-written codecs must agree with the `netlink` package's generic ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFdbBody, decodeNeighBody, decodeRouteBody, encodeNeighBody, encodeRouteBody } from '../../src/netlink/fast-codec';
import { encodeNeighbor, encodeRoute, parseNeighbor, parseRoute } from '../../src/netlink/codec';

test('route encode matches the package decoder and round-trips', () => {
  const body = encodeRouteBody({ dst: '10.244.7.0', dstLen: 24, gateway: '10.244.7.0', oif: 42, protocol: 113, scope: 0, type: 1, table: 254, flags: 4 });
  const parsed = parseRoute(body);
  assert.equal(parsed.data.dstLen, 24);
  assert.equal(parsed.attrs.oif, 42);
  assert.deepEqual([...parsed.attrs.dst!], [10, 244, 7, 0]);
  assert.deepEqual([...parsed.attrs.gateway!], [10, 244, 7, 0]);
  assert.equal(parsed.attrs.table, 254);
  const back = decodeRouteBody(body)!;
  assert.deepEqual(back, { dst: '10.244.7.0', dstLen: 24, gateway: '10.244.7.0', oif: 42, protocol: 113, table: 254, scope: 0, type: 1, onlink: true });
});

test('route decode reads what the package encodes', () => {
  const body = encodeRoute({ family: 2, dstLen: 16, table: 254, protocol: 4, scope: 253, type: 1 }, { dst: Buffer.from([10, 1, 0, 0]), oif: 3 });
  assert.deepEqual(decodeRouteBody(body), { dst: '10.1.0.0', dstLen: 16, gateway: undefined, oif: 3, protocol: 4, table: 254, scope: 253, type: 1, onlink: false });
});

test('neighbour and FDB encode/decode agree with the package', () => {
  const n = encodeNeighBody(2, 5, 0x80, 0, '10.244.7.0', '0e:aa:bb:cc:dd:ee');
  const p = parseNeighbor(n);
  assert.equal(p.data.ifindex, 5);
  assert.ok(p.data.state?.permanent);
  assert.deepEqual([...p.attrs.lladdr!], [0x0e, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
  assert.deepEqual(decodeNeighBody(n), { index: 5, ip: '10.244.7.0', mac: '0e:aa:bb:cc:dd:ee', state: 0x80 });

  const f = encodeNeighbor({ family: 7, ifindex: 9, state: { permanent: true }, flags: { self: true } }, { lladdr: Buffer.from([1, 2, 3, 4, 5, 6]), dst: Buffer.from([192, 168, 1, 2]) });
  assert.deepEqual(decodeFdbBody(f), { index: 9, mac: '01:02:03:04:05:06', dst: '192.168.1.2', state: 0x80, self: true });
});

test('bad input is rejected, truncated bodies never throw', () => {
  assert.throws(() => encodeNeighBody(2, 1, 0, 0, '10.0.0.256', undefined), TypeError);
  assert.throws(() => encodeNeighBody(2, 1, 0, 0, '10.0.0.1', 'zz:00:00:00:00:00'), TypeError);
  assert.throws(() => encodeRouteBody({ dst: '10.0.0', dstLen: 24, gateway: undefined, oif: 1, protocol: 113, scope: 0, type: 1, table: 254, flags: 0 }), TypeError);
  const good = encodeRouteBody({ dst: '10.0.0.0', dstLen: 24, gateway: '10.0.0.0', oif: 1, protocol: 113, scope: 0, type: 1, table: 254, flags: 4 });
  for (let len = 0; len < good.length; len++) {
    assert.doesNotThrow(() => decodeRouteBody(good.subarray(0, len)));
    assert.doesNotThrow(() => decodeNeighBody(good.subarray(0, len)));
  }
});
