import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyHex } from '../../src/backends/wireguard/key';
import { diffDevice } from '../../src/backends/wireguard/device-diff';
import { checkSetAnswer, formatSet, parseGet, UapiError } from '../../src/backends/wireguard/uapi-text';
import type { WgPeerEntry } from '../../src/dataplane/model';

const A = Buffer.alloc(32, 1).toString('base64');
const B = Buffer.alloc(32, 2).toString('base64');
const C = Buffer.alloc(32, 3).toString('base64');
const PSK = Buffer.alloc(32, 9).toString('base64');
const PRIV = 'aa'.repeat(32);
const peer = (publicKey: string, endpoint: string, allowed: string[], extra: Partial<WgPeerEntry> = {}): WgPeerEntry => ({
  publicKey, endpoint, allowedIps: allowed, keepalive: 0, presharedKey: undefined, ...extra,
});

// As wireguard-go answers get=1 (fields in its order, counters included).
const GET = [
  `private_key=${PRIV}`,
  'listen_port=51820',
  `public_key=${keyHex(A)}`,
  `preshared_key=${'0'.repeat(64)}`,
  'protocol_version=1',
  'endpoint=192.168.50.12:51820',
  'last_handshake_time_sec=0',
  'last_handshake_time_nsec=0',
  'tx_bytes=0',
  'rx_bytes=0',
  'persistent_keepalive_interval=0',
  'allowed_ip=10.244.2.0/24',
  `public_key=${keyHex(B)}`,
  `preshared_key=${keyHex(PSK)}`,
  'endpoint=192.168.50.13:51820',
  'persistent_keepalive_interval=25',
  'allowed_ip=10.244.3.0/24',
  'allowed_ip=10.244.30.0/24',
  'errno=0',
  '',
  '',
].join('\n');

test('parseGet reads the device and its peers (hex keys back to base64)', () => {
  const d = parseGet(GET);
  assert.equal(d.privateKeyHex, PRIV);
  assert.equal(d.listenPort, 51820);
  assert.deepEqual([...d.peers.values()], [
    peer(A, '192.168.50.12:51820', ['10.244.2.0/24']),
    peer(B, '192.168.50.13:51820', ['10.244.3.0/24', '10.244.30.0/24'], { keepalive: 25, presharedKey: PSK }),
  ]);
  assert.equal(parseGet('listen_port=40000\nerrno=0\n\n').privateKeyHex, undefined);
  assert.throws(() => parseGet('errno=13\n\n'), UapiError);
  assert.throws(() => parseGet('listen_port=1\n\n'), UapiError);
  assert.doesNotThrow(() => checkSetAnswer('errno=0\n\n'));
  assert.throws(() => checkSetAnswer('errno=-22\n\n'), (e: unknown) => (e as UapiError).errno === -22);
});

test('diff + UAPI set: only the differences, removed peers removed, changed peers rewritten whole', () => {
  const actual = parseGet(GET);
  const same = diffDevice({ privateKeyHex: PRIV, listenPort: 51820, peers: actual.peers }, actual);
  assert.deepEqual(same, { remove: [], upsert: [] });
  assert.equal(formatSet(same), null);

  const desired = new Map([
    [A, peer(A, '192.168.50.22:51820', ['10.244.2.0/24'])], // endpoint changed
    [C, peer(C, '192.168.50.14:51821', ['10.244.4.0/24'], { presharedKey: PSK })], // new
  ]); // B gone
  const d = diffDevice({ privateKeyHex: 'bb'.repeat(32), listenPort: 51820, peers: desired }, actual);
  assert.deepEqual([d.upsert.length, d.remove, d.privateKeyHex, d.listenPort], [2, [B], 'bb'.repeat(32), undefined]);
  assert.equal(
    formatSet(d),
    [
      'set=1',
      `private_key=${'bb'.repeat(32)}`,
      `public_key=${keyHex(B)}`,
      'remove=true',
      `public_key=${keyHex(A)}`,
      `preshared_key=${'0'.repeat(64)}`,
      'endpoint=192.168.50.22:51820',
      'persistent_keepalive_interval=0',
      'replace_allowed_ips=true',
      'allowed_ip=10.244.2.0/24',
      `public_key=${keyHex(C)}`,
      `preshared_key=${keyHex(PSK)}`,
      'endpoint=192.168.50.14:51821',
      'persistent_keepalive_interval=0',
      'replace_allowed_ips=true',
      'allowed_ip=10.244.4.0/24',
      '',
      '',
    ].join('\n'),
  );
});
