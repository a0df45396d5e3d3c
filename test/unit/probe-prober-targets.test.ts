// The prober's targets are handed over whole after every burst of lease events: unchanged
// targets keep their objects and health (issue 13: no 10,000 promoted copies per call),
// changed ones are replaced, removed ones forgotten with their health.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prober, type ProbeTarget } from '../../src/probe/prober';
import { parseIp4 } from '../../src/ip/ipv4';

const target = (i: number, publicIp = `192.0.2.${i}`): ProbeTarget => ({ key: `10.9.${i}.0/24`, overlay: parseIp4(`10.9.${i}.0`), publicIp: parseIp4(publicIp) });

test('setTargets keeps unchanged targets as they are, replaces changed ones, forgets removed ones', () => {
  const prober = new Prober({ port: 8475, intervalMs: 100, maxProbesPerSecond: 100, failures: 3, onTransition: () => undefined, onError: () => undefined, onRtt: () => undefined });
  try {
    const first = [target(1), target(2), target(3)];
    prober.setTargets(first);
    const health2 = prober.health().get('10.9.2.0/24');
    assert.ok(health2);
    prober.setTargets([target(1), target(2, '192.0.2.99'), target(4)]);
    assert.equal(prober.target('10.9.1.0/24'), first[0], 'unchanged: the same object');
    assert.equal(prober.target('10.9.2.0/24')!.publicIp, parseIp4('192.0.2.99'), 'changed PublicIP: replaced');
    assert.equal(prober.health().get('10.9.2.0/24'), health2, 'its health stays (same subnet)');
    assert.equal(prober.target('10.9.3.0/24'), undefined, 'removed');
    assert.equal(prober.health().has('10.9.3.0/24'), false, 'and its health with it');
    assert.ok(prober.target('10.9.4.0/24') && prober.health().has('10.9.4.0/24'), 'added, with fresh health');
    assert.deepEqual([...prober.health().keys()].sort(), ['10.9.1.0/24', '10.9.2.0/24', '10.9.4.0/24']);
  } finally {
    prober.stop();
  }
});

test('upsertTarget and removeTarget (one lease event) do what a whole new set would', () => {
  const prober = new Prober({ port: 8475, intervalMs: 100, maxProbesPerSecond: 100, failures: 3, onTransition: () => undefined, onError: () => undefined, onRtt: () => undefined });
  try {
    const t1 = target(1);
    prober.setTargets([t1, target(2)]);
    const h1 = prober.health().get(t1.key);
    prober.upsertTarget(target(1));
    assert.equal(prober.target(t1.key), t1, 'the same target again: kept');
    prober.upsertTarget(target(1, '192.0.2.77'));
    assert.equal(prober.target(t1.key)!.publicIp, parseIp4('192.0.2.77'), 'a new PublicIP: replaced');
    assert.equal(prober.health().get(t1.key), h1, 'health kept for the same subnet');
    prober.upsertTarget(target(5));
    prober.removeTarget(target(2).key);
    prober.removeTarget('10.9.99.0/24');
    assert.deepEqual([...prober.health().keys()].sort(), [t1.key, target(5).key]);
    assert.equal(prober.target(target(2).key), undefined);
  } finally {
    prober.stop();
  }
});
