import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { IpError } from '../../src/ip/ipv4';
import { macFromBuffer, macToBuffer, parseMac, randomLocalMac, tryParseMac } from '../../src/ip/mac';

function assertMacError(f: () => unknown): void {
  assert.throws(f, (err: unknown) => err instanceof IpError && err.code === 'ERR_INVALID_MAC');
}

test('parseMac normalises to lowercase colon form', () => {
  assert.equal(parseMac('0E:1F:AA:00:12:34'), '0e:1f:aa:00:12:34');
  assert.equal(parseMac('02:00:00:00:00:01'), '02:00:00:00:00:01');
});

test('parseMac rejects malformed, multicast and all-zero addresses', () => {
  for (const s of ['', '0e:1f:aa:00:12', '0e:1f:aa:00:12:34:56', '0e-1f-aa-00-12-34', '0e1f.aa00.1234', '0e:1f:aa:00:12:3', 'e:1f:aa:00:12:34', '0g:1f:aa:00:12:34', ' 0e:1f:aa:00:12:34', '0e:1f:aa:00:12:34 ']) {
    assertMacError(() => parseMac(s));
  }
  assertMacError(() => parseMac('01:00:5e:00:00:01')); // IPv4 multicast
  assertMacError(() => parseMac('ff:ff:ff:ff:ff:ff')); // broadcast
  assertMacError(() => parseMac('33:33:00:00:00:01')); // IPv6 multicast
  assertMacError(() => parseMac('00:00:00:00:00:00'));
  assertMacError(() => parseMac(7 as unknown as string));
  assert.equal(tryParseMac('01:00:5e:00:00:01'), null);
  assert.equal(tryParseMac(null), null);
});

test('buffer conversions', () => {
  const b = macToBuffer('0E:1f:aa:00:12:34');
  assert.deepEqual([...b], [0x0e, 0x1f, 0xaa, 0x00, 0x12, 0x34]);
  assert.equal(macFromBuffer(b), '0e:1f:aa:00:12:34');
  assertMacError(() => macFromBuffer(Buffer.alloc(5, 2)));
  assertMacError(() => macFromBuffer(Buffer.from([1, 2, 3, 4, 5, 6])));
});

test('randomLocalMac is locally administered unicast, from the given source', () => {
  assert.equal(randomLocalMac(() => Buffer.from([0xff, 1, 2, 3, 4, 5])), 'fe:01:02:03:04:05');
  assert.equal(randomLocalMac(() => Buffer.alloc(6, 0)), '02:00:00:00:00:00');
  for (let i = 0; i < 200; i++) {
    const mac = randomLocalMac();
    const first = parseInt(mac.slice(0, 2), 16);
    assert.equal(first & 0x01, 0, mac);
    assert.equal(first & 0x02, 0x02, mac);
    assert.equal(parseMac(mac), mac);
  }
  assertMacError(() => randomLocalMac(() => Buffer.alloc(3)));
});
