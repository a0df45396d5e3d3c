// The lab's UDP probe: sockets bound inside namespaces through inNetns stay there, pairs that
// can reach each other answer, and pairs that cannot are reported, never thrown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deleteAll, isRoot, Netns } from '../support/netns';
import { Teardown } from '../../src/lab/teardown';
import { bindInNetns, probeMatrix } from '../../src/lab/probe';

const skip = !isRoot() ? 'needs root' : false;
let a: Netns;
let b: Netns;
let lone: Netns;

before(() => {
  if (skip) return;
  a = Netns.create('pra');
  b = Netns.create('prb');
  lone = Netns.create('prl');
  a.ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', b.name);
  a.ip('addr', 'add', '10.123.0.1/24', 'dev', 'veth0');
  b.ip('addr', 'add', '10.123.0.2/24', 'dev', 'veth1');
  a.ip('link', 'set', 'veth0', 'up');
  b.ip('link', 'set', 'veth1', 'up');
  // An address with no link to the others: reachable by nobody but itself.
  lone.ip('link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  lone.ip('addr', 'add', '10.123.0.3/24', 'dev', 'v0');
  lone.ip('link', 'set', 'v0', 'up');
  lone.ip('link', 'set', 'v1', 'up');
});

after(async () => {
  if (skip) return;
  const t = new Teardown();
  await deleteAll(t, [a, b, lone]);
  t.finish('lab-probe teardown');
});

test('a socket bound through inNetns lives in that namespace', { skip }, async () => {
  const s = await bindInNetns(a.path, '10.123.0.1');
  try {
    assert.equal(s.address().address, '10.123.0.1');
    assert.match(a.exec('ss', '-H', '-u', '-l', '-n'), new RegExp(`10\\.123\\.0\\.1:${s.address().port}`));
  } finally {
    s.close();
  }
  // The same address does not exist in the namespace of another pod.
  await assert.rejects(bindInNetns(b.path, '10.123.0.1'), (err: NodeJS.ErrnoException) => err.code === 'EADDRNOTAVAIL');
});

test('probe matrix: connected pairs ok, isolated and address-less ones reported', { skip }, async () => {
  const results = await probeMatrix(
    [
      { name: 'a', nsPath: a.path, ip: '10.123.0.1' },
      { name: 'b', nsPath: b.path, ip: '10.123.0.2' },
      { name: 'lone', nsPath: lone.path, ip: '10.123.0.3' },
      { name: 'ghost', nsPath: a.path, ip: '10.123.0.9' },
    ],
    { attempts: 2, attemptTimeoutMs: 200 },
  );
  const cell = (f: string, t: string) => results.find((r) => r.from === f && r.to === t)!;
  assert.equal(results.length, 16);
  for (const [f, t] of [['a', 'b'], ['b', 'a'], ['a', 'a'], ['lone', 'lone']]) {
    assert.ok(cell(f!, t!).ok, `${f} -> ${t}`);
    assert.ok(cell(f!, t!).rttMs! >= 0);
  }
  for (const [f, t] of [['a', 'lone'], ['lone', 'b']]) {
    assert.equal(cell(f!, t!).ok, false, `${f} -> ${t}`);
    assert.equal(cell(f!, t!).error, undefined);
  }
  assert.match(cell('a', 'ghost').error!, /cannot bind in ghost/);
  assert.match(cell('ghost', 'b').error!, /cannot bind in ghost/);
});
