// Peer probes over real sockets in two namespaces: DF is really set (a full-size probe is not
// fragmented where a plain datagram would be), the prober judges ok / mtu / unreachable from
// a responder's answers, and the responder drops and counts garbage and foreign sources
// without ever answering them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { isRoot, Netns, waitFor } from '../support/netns';
import { inNetns } from '../../src/netns/netns';
import { bindInNetns } from '../../src/lab/probe';
import { parseIp4, parsePrefix4, ipInPrefix } from '../../src/ip/ipv4';
import { openDfSocket } from '../../src/probe/socket';
import { Prober } from '../../src/probe/prober';
import { ProbeResponder } from '../../src/probe/responder';
import { encodeRequest } from '../../src/probe/wire';
import type { Transition } from '../../src/probe/health';

const skip = !isRoot() ? 'needs root' : false;
let a: Netns;
let b: Netns;
const A = '10.124.0.1';
const B = '10.124.0.2';
const PORT = 18475;

before(() => {
  if (skip) return;
  a = Netns.create('pba');
  b = Netns.create('pbb');
  a.ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', b.name);
  a.ip('addr', 'add', `${A}/24`, 'dev', 'veth0');
  b.ip('addr', 'add', `${B}/24`, 'dev', 'veth1');
  a.ip('link', 'set', 'veth0', 'up');
  b.ip('link', 'set', 'veth1', 'up');
});

after(() => {
  if (skip) return;
  for (const n of [a, b]) n?.delete();
});

function received(ns: Netns, ip: string, port: number): Promise<{ sock: dgram.Socket; sizes: number[] }> {
  return inNetns(ns.path, () => openDfSocket(parseIp4(ip), port)).then((sock) => {
    const sizes: number[] = [];
    sock.on('message', (m) => sizes.push(m.length));
    return { sock, sizes };
  });
}

test('DF is set: above the local MTU a plain datagram is fragmented and arrives, a probe socket refuses it', { skip }, async () => {
  a.ip('link', 'set', 'veth0', 'mtu', '1400');
  const rx = await received(b, B, PORT + 1);
  const df = await inNetns(a.path, () => openDfSocket(parseIp4(A), 0));
  const plain = await bindInNetns(a.path, A); // node:dgram, no DF
  try {
    const dfErr = await new Promise<Error | null>((r) => df.send(Buffer.alloc(1472), PORT + 1, B, (e) => r(e ?? null)));
    assert.equal((dfErr as { code?: string } | null)?.code, 'EMSGSIZE', 'the kernel refuses a DF datagram over the MTU');
    await new Promise<void>((r) => plain.send(Buffer.alloc(1472), PORT + 1, B, () => r()));
    await waitFor(() => rx.sizes.includes(1472), 2000, 'the plain datagram arrives, reassembled');
    await new Promise<void>((r) => df.send(Buffer.alloc(1372), PORT + 1, B, () => r()));
    await waitFor(() => rx.sizes.includes(1372), 2000, 'a DF datagram that fits arrives');
  } finally {
    a.ip('link', 'set', 'veth0', 'mtu', '1500');
    for (const s of [rx.sock, df, plain]) s.close();
  }
});

test('the prober judges ok, then mtu when the path shrinks below the probe size, then unreachable, and recovers', { skip, timeout: 60_000 }, async () => {
  const network = parsePrefix4('10.124.0.0/16');
  const responder = new ProbeResponder({
    port: PORT,
    policy: { allowed: (ip) => ipInPrefix(ip, network), self: () => parseIp4(B) },
    ratePerSecond: 100,
    onError: () => undefined,
    openSocket: (ip, port) => inNetns(b.path, () => openDfSocket(ip, port)),
  });
  await responder.start();
  const transitions: Transition[] = [];
  const prober = new Prober({
    port: PORT,
    intervalMs: 300,
    maxProbesPerSecond: 100,
    failures: 3,
    onTransition: (_t, tr) => transitions.push(tr),
    onError: () => undefined,
    onRtt: () => undefined,
    openSocket: (ip, port) => inNetns(a.path, () => openDfSocket(ip, port)),
  });
  const key = '10.124.0.2/32';
  const status = (): string => prober.peer(key)?.health.status ?? 'none';
  try {
    prober.setTargets([{ key, overlay: parseIp4(B), publicIp: parseIp4(B) }]);
    prober.setSelf(parseIp4(A), 1500);
    await waitFor(() => status() === 'ok', 10_000, 'ok');
    const h = prober.peer(key)!.health;
    assert.ok(h.rttMs! > 0 && h.rttMs! < 100, `rtt ${h.rttMs} ms`);
    b.ip('link', 'set', 'veth1', 'mtu', '1400'); // B drops what is bigger than 1400 on receive
    await waitFor(() => status() === 'mtu', 10_000, 'mtu');
    b.ip('link', 'set', 'veth1', 'mtu', '1500');
    await waitFor(() => status() === 'ok', 10_000, 'ok again');
    b.ip('link', 'set', 'veth1', 'down');
    await waitFor(() => status() === 'unreachable', 10_000, 'unreachable');
    b.ip('link', 'set', 'veth1', 'up');
    await waitFor(() => status() === 'ok', 10_000, 'ok after the link is back');
    assert.deepEqual(
      transitions.map((t) => `${t.from}>${t.to}`),
      ['unknown>ok', 'ok>mtu', 'mtu>ok', 'ok>unreachable', 'unreachable>ok'],
      'each change reported once',
    );
    assert.ok(responder.stats.answered > 0);
  } finally {
    prober.stop();
    responder.close();
  }
});

test('fuzz: the responder answers only well-formed requests from allowed sources, never with more bytes', { skip, timeout: 60_000 }, async () => {
  const network = parsePrefix4('10.124.0.0/30'); // 10.124.0.1 allowed, 10.124.0.9 is not
  a.ip('addr', 'add', '10.124.0.9/24', 'dev', 'veth0');
  const responder = new ProbeResponder({
    port: PORT + 2,
    policy: { allowed: (ip) => ipInPrefix(ip, network), self: () => parseIp4(B) },
    ratePerSecond: 10_000,
    perSourceRate: 10_000,
    onError: () => undefined,
    openSocket: (ip, port) => inNetns(b.path, () => openDfSocket(ip, port)),
  });
  await responder.start();
  const good = await received(a, A, 0);
  const foreign = await received(a, '10.124.0.9', 0);
  const answers: number[] = [];
  good.sock.removeAllListeners('message');
  good.sock.on('message', (m) => answers.push(m.length));
  try {
    const sent: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const msg = i % 10 === 0 ? encodeRequest({ full: false, seq: i, sender: 1, token: 2, size: 20 + (i % 200) }) : randomBytes(i % 300);
      if (i % 10 === 0) sent.push(msg.length);
      good.sock.send(msg, PORT + 2, B);
      if (i % 10 === 0) foreign.sock.send(msg, PORT + 2, B);
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => answers.length === sent.length, 5000, 'every valid request answered');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(answers.sort(), sent.sort(), 'answers are exactly the requests’ sizes');
    assert.equal(foreign.sizes.length, 0, 'a source outside the allowed network gets nothing');
    const dropped = Object.values(responder.stats.dropped).reduce((x, y) => x + y, 0);
    assert.equal(responder.stats.answered, 200);
    assert.equal(dropped, 1800 + 200, 'the garbage and the foreign requests dropped and counted');
    assert.equal(responder.stats.dropped.source, 200);
  } finally {
    responder.close();
    good.sock.close();
    foreign.sock.close();
  }
});
