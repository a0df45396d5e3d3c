// src/ip/bytes.ts: the one set of IPv4/MAC text <-> byte helpers every codec uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ip4Bytes, ip4Of, macBytes, macOf, readIp4, readMac, writeIp4, writeMac } from '../../src/ip/bytes';
import { formatIp4, ip4ToBuffer, parseIp4 } from '../../src/ip/ipv4';

test('IPv4: text to bytes and back, at an offset, against ipv4.ts', () => {
  for (const ip of ['0.0.0.0', '10.244.7.0', '172.30.0.11', '255.255.255.255', '1.2.3.4']) {
    assert.deepEqual(ip4Bytes(ip), ip4ToBuffer(parseIp4(ip)), ip);
    const buf = Buffer.alloc(9, 0xee);
    writeIp4(buf, 3, ip);
    assert.equal(readIp4(buf, 3), ip);
    assert.deepEqual([buf[2], buf[7]], [0xee, 0xee], 'neighbouring bytes untouched');
  }
  // Random addresses round-trip through the number form too.
  for (let i = 0; i < 1000; i++) {
    const n = Math.floor(Math.random() * 2 ** 32);
    assert.equal(readIp4(ip4Bytes(formatIp4(n)), 0), formatIp4(n));
  }
  // A leading zero is decimal (never octal), as the codecs always read it.
  assert.deepEqual([...ip4Bytes('010.0.0.1')], [10, 0, 0, 1]);
});

test('IPv4: malformed text throws TypeError', () => {
  for (const bad of ['', '10.0.0', '10.0.0.0.1', '10.0.0.256', '10..0.1', '10.0.0.1 ', ' 10.0.0.1', '1000.0.0.1', '0x0a.0.0.1', '10.0.0.-1', '10.0.0.1.']) {
    assert.throws(() => ip4Bytes(bad), TypeError, JSON.stringify(bad));
  }
});

test('MAC: text to bytes and back, either case in, lowercase out', () => {
  assert.deepEqual([...macBytes('0E:1f:aa:00:12:34')], [0x0e, 0x1f, 0xaa, 0x00, 0x12, 0x34]);
  assert.equal(readMac(macBytes('0E:1F:AA:00:12:34'), 0), '0e:1f:aa:00:12:34');
  // No policy here: multicast and zero MACs encode (validation is parseMac's job).
  assert.equal(readMac(macBytes('ff:ff:ff:ff:ff:ff'), 0), 'ff:ff:ff:ff:ff:ff');
  assert.equal(readMac(macBytes('00:00:00:00:00:00'), 0), '00:00:00:00:00:00');
  const buf = Buffer.alloc(10);
  writeMac(buf, 2, '02:42:ac:11:00:02');
  assert.equal(readMac(buf, 2), '02:42:ac:11:00:02');
  assert.equal(readMac([2, 0x42, 0xac, 0x11, 0, 2], 0), '02:42:ac:11:00:02', 'plain arrays read too');
  for (let i = 0; i < 256; i++) assert.equal(readMac([i, i, i, i, i, i], 0), Array(6).fill(i.toString(16).padStart(2, '0')).join(':'));
});

test('MAC: malformed text throws TypeError', () => {
  for (const bad of ['', '0e:1f:aa:00:12', '0e:1f:aa:00:12:34:56', '0e-1f-aa-00-12-34', 'zz:1f:aa:00:12:34', '0e:1f:aa:00:12:3', '0e1f.aa00.1234', '0e:1f:aa:00:12:3g']) {
    assert.throws(() => macBytes(bad), TypeError, JSON.stringify(bad));
  }
});

test('attribute payloads: only the right length decodes', () => {
  assert.equal(ip4Of(Buffer.from([10, 244, 0, 1])), '10.244.0.1');
  assert.equal(ip4Of(Buffer.from([10, 244, 0])), undefined);
  assert.equal(ip4Of(Buffer.alloc(16)), undefined, 'an IPv6 payload is not an IPv4 address');
  assert.equal(ip4Of(undefined), undefined);
  assert.equal(macOf(Buffer.from([0x0e, 0, 0, 0, 0, 1])), '0e:00:00:00:00:01');
  assert.equal(macOf(Buffer.alloc(20)), undefined, 'an InfiniBand hardware address is not a MAC');
  assert.equal(macOf(undefined), undefined);
});
