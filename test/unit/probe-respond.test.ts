// The responder's decision, pure: who gets an answer, how big, how often; a fuzz of random and
// mutated datagrams from allowed and foreign sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { respond, type ResponderLimits } from '../../src/probe/respond';
import { PerSourceLimiter, TokenBucket } from '../../src/probe/token-bucket';
import { encodeReply, encodeRequest } from '../../src/probe/wire';

const SELF = 0x0af40100;
const policy = { allowed: (ip: number) => ip >>> 24 === 10, self: () => SELF };
const limits = (total = 1e9, perSource = 1e9): ResponderLimits => ({ total: new TokenBucket(total, total, 0), perSource: new PerSourceLimiter(perSource, perSource) });
const req = (size = 64): Buffer => encodeRequest({ full: false, seq: 1, sender: 2, token: 3, size });

test('a well-formed request from an allowed source is answered with its own length', () => {
  const r = respond(req(1422), { ip: 0x0a000001, port: 4000 }, policy, limits(), 0);
  assert.ok('answer' in r);
  assert.equal(r.answer.length, 1422);
  assert.equal(r.answer.readUInt32BE(12), SELF);
});

test('foreign sources, port 0 and replies are dropped', () => {
  assert.deepEqual(respond(req(), { ip: 0xc0a80001, port: 4000 }, policy, limits(), 0), { drop: 'source' });
  assert.deepEqual(respond(req(), { ip: 0x0a000001, port: 0 }, policy, limits(), 0), { drop: 'source' });
  assert.deepEqual(respond(encodeReply(req(), 5), { ip: 0x0a000001, port: 4000 }, policy, limits(), 0), { drop: 'not-request' });
});

test('one source is held to its own rate; others are still answered; the total bound holds too', () => {
  const l = limits(100, 10);
  let answered = 0;
  for (let i = 0; i < 100; i++) if ('answer' in respond(req(), { ip: 0x0a000001, port: 4000 }, policy, l, 0)) answered++;
  assert.equal(answered, 10, 'the flooding source gets its burst only');
  assert.ok('answer' in respond(req(), { ip: 0x0a000002, port: 4000 }, policy, l, 0), 'another source is still answered');
  const t = limits(5, 1000);
  let n = 0;
  for (let i = 0; i < 50; i++) if ('answer' in respond(req(), { ip: 0x0a000000 + i, port: 4000 }, policy, t, 0)) n++;
  assert.equal(n, 5, 'the total bound');
});

test('fuzz: 50,000 random or mutated datagrams from random sources — never a throw, never a longer answer, foreign never answered', () => {
  const l = limits();
  const seed = req(300);
  for (let i = 0; i < 50_000; i++) {
    let b: Buffer;
    if (i % 3 === 0) b = randomBytes(Math.floor(Math.random() * 400));
    else {
      b = Buffer.from(seed.subarray(0, 1 + Math.floor(Math.random() * seed.length)));
      for (let k = 0; k < 1 + (i % 3); k++) b[Math.floor(Math.random() * b.length)] = Math.floor(Math.random() * 256);
    }
    const ip = (Math.random() * 2 ** 32) >>> 0;
    const r = respond(b, { ip, port: 1 + (i % 65535) }, policy, l, i);
    if ('answer' in r) {
      assert.ok(r.answer.length === b.length);
      assert.ok(policy.allowed(ip));
    }
  }
});
