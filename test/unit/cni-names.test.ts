// Derived names and MACs, and the JS SHA-256 they rest on (checked against node:crypto).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { sha256, sha256Hex } from '../../src/cni/sha256';
import { HOST_VETH_NAME, hostVethMac, hostVethName, macForIp } from '../../src/cni/names';

test('sha256 matches node:crypto across block boundaries', () => {
  for (const len of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000]) {
    const buf = randomBytes(len);
    assert.equal(Buffer.from(sha256(buf)).toString('hex'), createHash('sha256').update(buf).digest('hex'), `len ${len}`);
  }
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('host veth names are deterministic, short and distinct per (container, ifname)', () => {
  const a = hostVethName('0123abcd', 'eth0');
  assert.equal(a, hostVethName('0123abcd', 'eth0'));
  assert.match(a, HOST_VETH_NAME);
  assert.equal(a.length, 13);
  assert.equal(a, `tw${createHash('sha256').update('0123abcd/eth0').digest('hex').slice(0, 11)}`);
  assert.notEqual(a, hostVethName('0123abcd', 'net1'));
  assert.notEqual(a, hostVethName('0123abce', 'eth0'));
  const many = new Set(Array.from({ length: 2000 }, (_, i) => hostVethName(`ctr-${i}`, 'eth0')));
  assert.equal(many.size, 2000);
});

test('MACs: unicast, locally administered, stable', () => {
  const m = hostVethMac('c1', 'eth0');
  assert.match(m, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const first = parseInt(m.slice(0, 2), 16);
  assert.equal(first & 1, 0, 'unicast');
  assert.equal(first & 2, 2, 'locally administered');
  assert.equal(m, hostVethMac('c1', 'eth0'));
  assert.equal(macForIp('10.244.7.2'), '0a:58:0a:f4:07:02');
});
