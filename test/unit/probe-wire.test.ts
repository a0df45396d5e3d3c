// The probe wire format: round trip, strict decoding, replies never longer than requests,
// and a fuzz run of random and mutated datagrams (never a throw, never a bigger answer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  decodeProbe,
  encodeReply,
  encodeRequest,
  fullProbeSize,
  KIND_REPLY,
  KIND_REQUEST,
  PROBE_HEADER_BYTES,
  PROBE_MAX_BYTES,
} from '../../src/probe/wire';

test('a request decodes to what was encoded, at any size', () => {
  for (const size of [PROBE_HEADER_BYTES, 64, 1422, PROBE_MAX_BYTES]) {
    const b = encodeRequest({ full: size > 64, seq: 0xfffffffe, sender: 0x0af42b00, token: 0x12345678, size });
    assert.equal(b.length, size);
    const d = decodeProbe(b);
    assert.ok(d.ok);
    assert.deepEqual(d.probe, { kind: KIND_REQUEST, full: size > 64, seq: 0xfffffffe, sender: 0x0af42b00, token: 0x12345678, size });
  }
  assert.throws(() => encodeRequest({ full: false, seq: 1, sender: 1, token: 1, size: PROBE_HEADER_BYTES - 1 }), RangeError);
  assert.throws(() => encodeRequest({ full: false, seq: 1, sender: 1, token: 1, size: PROBE_MAX_BYTES + 1 }), RangeError);
});

test('a reply is the request with kind and sender rewritten, same length', () => {
  const req = encodeRequest({ full: true, seq: 7, sender: 1, token: 99, size: 1422 });
  const rep = encodeReply(req, 0x0af44c00);
  assert.equal(rep.length, req.length);
  const d = decodeProbe(rep);
  assert.ok(d.ok);
  assert.equal(d.probe.kind, KIND_REPLY);
  assert.equal(d.probe.sender, 0x0af44c00);
  assert.equal(d.probe.seq, 7);
  assert.equal(d.probe.token, 99);
  assert.equal(d.probe.full, true);
  assert.equal(req[5], KIND_REQUEST, 'the request buffer is not modified');
});

test('malformed datagrams are refused with a reason', () => {
  const good = encodeRequest({ full: false, seq: 1, sender: 2, token: 3, size: 40 });
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };
  const cases: Array<[Buffer, string]> = [
    [good.subarray(0, 19), 'short'],
    [Buffer.alloc(PROBE_MAX_BYTES + 1), 'long'],
    [mutate((b) => (b[0] = 0x55)), 'magic'],
    [mutate((b) => (b[4] = 2)), 'version'],
    [mutate((b) => (b[5] = 3)), 'kind'],
    [mutate((b) => (b[7] = 2)), 'flags'],
    [mutate((b) => (b[39] = 1)), 'padding'],
  ];
  for (const [b, reason] of cases) assert.deepEqual(decodeProbe(b), { ok: false, reason });
});

test('fuzz: random and mutated input never throws; anything accepted is answered with at most its own length', () => {
  const seedReq = encodeRequest({ full: true, seq: 5, sender: 6, token: 7, size: 200 });
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    let b: Buffer;
    if (i % 2 === 0) b = randomBytes(Math.floor(Math.random() * 300));
    else {
      b = Buffer.from(seedReq.subarray(0, Math.floor(Math.random() * seedReq.length + 1)));
      const flips = 1 + Math.floor(Math.random() * 3);
      for (let k = 0; k < flips && b.length > 0; k++) b[Math.floor(Math.random() * b.length)] = Math.floor(Math.random() * 256);
    }
    const d = decodeProbe(b);
    if (d.ok) {
      accepted++;
      assert.ok(encodeReply(b, 1).length <= b.length);
    }
  }
  // Mutations that only touch seq/sender/token/full or truncate the padding stay valid.
  assert.ok(accepted > 0 && accepted < 20_000);
});

test('a full-size probe fills the pod MTU exactly: MTU − 28 bytes of payload', () => {
  assert.equal(fullProbeSize(1450), 1422);
  assert.equal(fullProbeSize(1500), 1472);
  assert.equal(fullProbeSize(30), PROBE_HEADER_BYTES);
  assert.equal(fullProbeSize(65535), PROBE_MAX_BYTES);
});
