import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  broadcast,
  compareSubnetText,
  firstHost,
  formatIp4,
  formatPrefix4,
  ip4FromBuffer,
  ip4ToBuffer,
  ipInPrefix,
  IpError,
  maskOf,
  parseIp4,
  parsePrefix4,
  prefixContains,
  prefixesOverlap,
  prefixSize,
  tryParseIp4,
} from '../../src/ip/ipv4';

function assertIpError(f: () => unknown): void {
  assert.throws(f, (err: unknown) => err instanceof IpError && err.code === 'ERR_INVALID_IP');
}

test('parseIp4 / formatIp4 round-trip, including the high bit', () => {
  for (const s of ['0.0.0.0', '10.244.7.0', '192.168.50.11', '255.255.255.255', '128.0.0.1', '1.2.3.4']) {
    const n = parseIp4(s);
    assert.ok(n >= 0 && n <= 0xffffffff && Number.isInteger(n), s);
    assert.equal(formatIp4(n), s);
  }
  assert.equal(parseIp4('255.255.255.255'), 0xffffffff);
  assert.equal(parseIp4('192.168.0.1'), 0xc0a80001);
  assert.equal(parseIp4('10.0.0.1'), 0x0a000001);
});

test('parseIp4 is strict', () => {
  for (const s of ['', '10.0.0', '10.0.0.0.0', '256.0.0.1', '010.0.0.1', '10.0.0.01', '0x0a.0.0.1', ' 10.0.0.1', '10.0.0.1 ', '10.0.0.-1', '10..0.1', 'a.b.c.d', '::1', '10.0.0.1/24', '1e1.0.0.1']) {
    assertIpError(() => parseIp4(s));
  }
  assertIpError(() => parseIp4(undefined as unknown as string));
  assert.equal(tryParseIp4('10.0.0.256'), null);
  assert.equal(tryParseIp4(42), null);
  assert.equal(tryParseIp4('10.0.0.1'), 0x0a000001);
});

test('maskOf covers 0 and 32 without JS shift surprises', () => {
  assert.equal(maskOf(0), 0);
  assert.equal(maskOf(1), 0x80000000);
  assert.equal(maskOf(8), 0xff000000);
  assert.equal(maskOf(24), 0xffffff00);
  assert.equal(maskOf(31), 0xfffffffe);
  assert.equal(maskOf(32), 0xffffffff);
  assertIpError(() => maskOf(33));
  assertIpError(() => maskOf(-1));
  assertIpError(() => maskOf(1.5));
});

test('parsePrefix4 masks host bits and round-trips', () => {
  assert.deepEqual(parsePrefix4('10.244.0.0/16'), { ip: parseIp4('10.244.0.0'), len: 16 });
  assert.deepEqual(parsePrefix4('10.244.1.7/16'), { ip: parseIp4('10.244.0.0'), len: 16 });
  assert.deepEqual(parsePrefix4('255.255.255.255/1'), { ip: 0x80000000, len: 1 });
  assert.deepEqual(parsePrefix4('1.2.3.4/0'), { ip: 0, len: 0 });
  assert.deepEqual(parsePrefix4('1.2.3.4/32'), { ip: parseIp4('1.2.3.4'), len: 32 });
  assert.equal(formatPrefix4(parsePrefix4('10.244.7.0/24')), '10.244.7.0/24');
  for (const s of ['10.244.0.0', '10.244.0.0/33', '10.244.0.0/016', '10.244.0.0/', '10.244.0.0/-1', '10.244.0/16', '/16', '10.244.0.0/16/1', '10.244.0.0/ 16']) {
    assertIpError(() => parsePrefix4(s));
  }
});

test('containment and overlap', () => {
  const net = parsePrefix4('10.244.0.0/16');
  const sub = parsePrefix4('10.244.7.0/24');
  const other = parsePrefix4('10.245.0.0/24');
  assert.ok(prefixContains(net, sub));
  assert.ok(prefixContains(net, net));
  assert.ok(!prefixContains(sub, net));
  assert.ok(!prefixContains(net, other));
  assert.ok(prefixesOverlap(net, sub));
  assert.ok(prefixesOverlap(sub, net));
  assert.ok(!prefixesOverlap(net, other));
  assert.ok(prefixesOverlap(parsePrefix4('0.0.0.0/0'), other));
  assert.ok(ipInPrefix(parseIp4('10.244.255.255'), net));
  assert.ok(!ipInPrefix(parseIp4('10.245.0.0'), net));
  assert.ok(ipInPrefix(parseIp4('255.255.255.255'), parsePrefix4('255.0.0.0/8')));
});

test('size, first host, broadcast', () => {
  const sub = parsePrefix4('10.244.7.0/24');
  assert.equal(prefixSize(sub), 256);
  assert.equal(prefixSize(parsePrefix4('0.0.0.0/0')), 2 ** 32);
  assert.equal(prefixSize(parsePrefix4('1.1.1.1/32')), 1);
  assert.equal(formatIp4(firstHost(sub)), '10.244.7.1');
  assert.equal(formatIp4(broadcast(sub)), '10.244.7.255');
  assert.equal(formatIp4(broadcast(parsePrefix4('200.0.0.0/4'))), '207.255.255.255');
  assert.equal(broadcast(parsePrefix4('0.0.0.0/0')), 0xffffffff);
});

test('buffers are 4 bytes in network order', () => {
  const ip = parseIp4('192.168.50.11');
  const b = ip4ToBuffer(ip);
  assert.deepEqual([...b], [192, 168, 50, 11]);
  assert.equal(ip4FromBuffer(b), ip);
  assert.equal(ip4FromBuffer(Buffer.from([255, 255, 255, 255])), 0xffffffff);
  assertIpError(() => ip4FromBuffer(Buffer.from([1, 2, 3])));
});

test('compareSubnetText orders subnets as numbers, malformed text first', () => {
  const rows = ['10.10.0.0/24', '10.2.0.0/24', '?', '10.2.0.0/16', '9.255.255.0/24', '10.2.0.0/24x', '255.255.255.255/32', '0.0.0.0/0', 'abc', '10.2.0/24', '10.2.0.0/33', '256.0.0.0/8'];
  assert.deepEqual([...rows].sort(compareSubnetText), [
    '10.2.0.0/24x', '10.2.0.0/33', '10.2.0/24', '256.0.0.0/8', '?', 'abc',
    '0.0.0.0/0', '9.255.255.0/24', '10.2.0.0/16', '10.2.0.0/24', '10.10.0.0/24', '255.255.255.255/32',
  ]);
  assert.equal(compareSubnetText('10.0.0.0/8', '10.0.0.0/8'), 0);
  // The order localeCompare's numeric collation gave for valid subnets, at 10,000 of them.
  const many = Array.from({ length: 10_000 }, (_, i) => `10.${(i * 7919) % 256}.${(i * 104729) % 256}.0/${16 + (i % 9)}`);
  const collator = new Intl.Collator('en', { numeric: true });
  assert.deepEqual([...many].sort(compareSubnetText), [...many].sort((a, b) => collator.compare(a, b)));
});
