// The VXLAN header codec: encoding per RFC 7348, every drop reason, and a fuzz test — random
// and truncated datagrams must never throw and must be classified exactly as an independent
// statement of the rules (written out below, not calling the codec) says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  decodeVxlan, encapsulate, encodeVxlanHeader, isValidVni, VxlanCodecError, VXLAN_HEADER_LEN, DECODE_RESULTS, type DecodeResult,
} from '../../src/userspace/vxlan-codec';

const frame = (n = 60): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i & 0xff);

test('encodes the 8-byte header: I flag, 24-bit VNI, reserved bytes zero', () => {
  assert.deepEqual([...encodeVxlanHeader(1)], [0x08, 0, 0, 0, 0, 0, 1, 0]);
  assert.deepEqual([...encodeVxlanHeader(0x123456)], [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
  assert.deepEqual([...encodeVxlanHeader(0xffffff)], [0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0]);
  assert.deepEqual([...encodeVxlanHeader(0)], [0x08, 0, 0, 0, 0, 0, 0, 0]);
  const out = new Uint8Array(12).fill(0xee);
  encodeVxlanHeader(7, out, 2);
  assert.deepEqual([...out], [0xee, 0xee, 0x08, 0, 0, 0, 0, 0, 7, 0, 0xee, 0xee]);
});

test('encode rejects what only a programming error produces, with a stable code', () => {
  for (const bad of [-1, 0x1000000, 1.5, NaN, '1' as unknown as number]) {
    assert.throws(() => encodeVxlanHeader(bad), (e: unknown) => e instanceof VxlanCodecError && e.code === 'ERR_VXLAN_CODEC');
  }
  assert.throws(() => encodeVxlanHeader(1, new Uint8Array(7)), { code: 'ERR_VXLAN_CODEC' });
  assert.throws(() => encodeVxlanHeader(1, new Uint8Array(8), 1), { code: 'ERR_VXLAN_CODEC' });
  assert.equal(isValidVni(0), true);
  assert.equal(isValidVni(0xffffff), true);
  assert.equal(isValidVni(0x1000000), false);
});

test('round trip: encapsulate then decode gives the frame back (a view, not a copy)', () => {
  const f = frame(1450);
  const d = encapsulate(42, f);
  assert.equal(d.length, VXLAN_HEADER_LEN + f.length);
  const r = decodeVxlan(d, 42);
  assert.ok(r.ok);
  assert.equal(r.vni, 42);
  assert.deepEqual([...r.frame], [...f]);
  assert.equal(r.frame.buffer, d.buffer);
});

test('each drop reason', () => {
  const ok = encapsulate(1, frame(14));
  assert.equal(decodeVxlan(ok, 1).ok, true, 'a bare 14-byte Ethernet header is a frame');
  const cases: Array<[string, Uint8Array, string]> = [
    ['empty', new Uint8Array(0), 'short'],
    ['7 bytes', ok.subarray(0, 7), 'short'],
    ['header only', ok.subarray(0, 8), 'runt-frame'],
    ['13-byte frame', ok.subarray(0, 8 + 13), 'runt-frame'],
    ['I flag missing', Uint8Array.from([0x00, 0, 0, 0, 0, 0, 1, 0, ...frame(14)]), 'bad-flags'],
    ['reserved flag bit', Uint8Array.from([0x0c, 0, 0, 0, 0, 0, 1, 0, ...frame(14)]), 'bad-flags'],
    ['GPE-style next-protocol byte', Uint8Array.from([0x08, 0, 0, 3, 0, 0, 1, 0, ...frame(14)]), 'bad-flags'],
    ['reserved byte after the VNI', Uint8Array.from([0x08, 0, 0, 0, 0, 0, 1, 1, ...frame(14)]), 'bad-flags'],
    ['other VNI', encapsulate(2, frame(14)), 'wrong-vni'],
    ['VNI 1 in the high byte', Uint8Array.from([0x08, 0, 0, 0, 1, 0, 0, 0, ...frame(14)]), 'wrong-vni'],
  ];
  for (const [what, d, reason] of cases) {
    const r = decodeVxlan(d, 1);
    assert.equal(r.ok, false, what);
    assert.equal((r as { reason: string }).reason, reason, what);
  }
});

test('hostile non-buffers are "short", never a throw', () => {
  for (const v of [undefined, null, 'abc', 42, {}, [8, 0, 0, 0, 0, 0, 1, 0]]) {
    const r = decodeVxlan(v as unknown as Uint8Array, 1);
    assert.deepEqual(r, { ok: false, reason: 'short' });
  }
});

/** The rules, restated independently of the implementation. */
function expected(d: Uint8Array, vni: number): string {
  if (d.length < 8) return 'short';
  const flagsWord = (d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!;
  if (flagsWord >>> 0 !== 0x08000000 || d[7] !== 0) return 'bad-flags';
  if (d[4]! * 65536 + d[5]! * 256 + d[6]! !== vni) return 'wrong-vni';
  if (d.length < 22) return 'runt-frame';
  return 'ok';
}

const label = (r: DecodeResult): string => (r.ok ? 'ok' : r.reason);

test('fuzz: 120k random, mutated and truncated datagrams — no throw, exact classification', () => {
  const seen = new Map<string, number>();
  const pool = randomBytes(4 * 1024 * 1024);
  let p = 0;
  const take = (n: number): Uint8Array => {
    if (p + n > pool.length) p = 0;
    const out = new Uint8Array(pool.subarray(p, p + n));
    p += n;
    return out;
  };
  const N = 120_000;
  for (let i = 0; i < N; i++) {
    const vni = i % 3 === 0 ? 1 : (pool[i % pool.length]! << 16) | (pool[(i + 1) % pool.length]! << 8) | pool[(i + 2) % pool.length]!;
    let d: Uint8Array;
    switch (i % 4) {
      case 0: // pure noise of any length 0..1600
        d = take(pool[i % pool.length]! * 6 + (i % 7));
        break;
      case 1: {
        // a valid datagram, truncated anywhere
        const full = encapsulate(vni, take(14 + (i % 1500)));
        d = full.subarray(0, i % (full.length + 1));
        break;
      }
      case 2: {
        // a valid datagram with one header byte flipped to a random value
        d = encapsulate(vni, take(14 + (i % 100)));
        d[i % 8] = pool[(i * 7) % pool.length]!;
        break;
      }
      default: {
        // a valid header with a random VNI and a frame length around the runt boundary
        d = encapsulate((i * 2654435761) % 0x1000000, take(10 + (i % 8)));
      }
    }
    let r: DecodeResult;
    try {
      r = decodeVxlan(d, vni);
    } catch (err) {
      assert.fail(`decode threw on ${Buffer.from(d).toString('hex')}: ${String(err)}`);
    }
    const got = label(r);
    const want = expected(d, vni);
    if (got !== want) assert.fail(`datagram ${Buffer.from(d.subarray(0, 24)).toString('hex')} (len ${d.length}, vni ${vni}): got ${got}, want ${want}`);
    if (r.ok) assert.equal(r.frame.length, d.length - 8);
    seen.set(got, (seen.get(got) ?? 0) + 1);
  }
  // Every outcome was exercised, so the fuzz proves something about each.
  for (const outcome of DECODE_RESULTS) assert.ok((seen.get(outcome) ?? 0) > 100, `${outcome} seen ${seen.get(outcome) ?? 0} times`);
});
