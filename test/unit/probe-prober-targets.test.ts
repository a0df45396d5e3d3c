// The prober's targets are handed over whole after every burst of lease events: peers that stay
// keep their records and health (issue 13: no 10,000 promoted copies per call), a changed
// address is written into the record (its metrics label dropped with the old IP), removed peers
// are forgotten with their health and leave the schedule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabelText } from '../../src/observe/metrics';
import type { PeerLabelName, ProbeTarget } from '../../src/probe/peer';
import { Prober } from '../../src/probe/prober';
import { parseIp4 } from '../../src/ip/ipv4';

const target = (i: number, publicIp = `192.0.2.${i}`): ProbeTarget => ({ key: `10.9.${i}.0/24`, overlay: parseIp4(`10.9.${i}.0`), publicIp: parseIp4(publicIp) });
const newProber = (): Prober => new Prober({ port: 8475, intervalMs: 100, maxProbesPerSecond: 100, failures: 3, onTransition: () => undefined, onError: () => undefined, onRtt: () => undefined });
const someLabel = 'made by a scrape' as LabelText<PeerLabelName>;

test('setTargets keeps unchanged peers as they are, updates changed ones in place, forgets removed ones', () => {
  const prober = newProber();
  try {
    prober.setTargets([target(1), target(2), target(3)]);
    const [p1, p2, p3] = [1, 2, 3].map((i) => prober.peer(target(i).key)!);
    assert.ok(p1 && p2 && p3);
    p1.label = someLabel;
    p2.label = someLabel;
    const health2 = p2.health;
    prober.setTargets([target(1), target(2, '192.0.2.99'), target(4)]);
    assert.equal(prober.peer('10.9.1.0/24'), p1, 'unchanged: the same record');
    assert.equal(p1.label, someLabel, 'and its label text');
    assert.equal(prober.peer('10.9.2.0/24'), p2, 'changed PublicIP: the same record');
    assert.equal(p2.publicIp, parseIp4('192.0.2.99'), 'with the new PublicIP');
    assert.equal(p2.label, undefined, 'its label text (made for the old IP) dropped');
    assert.equal(p2.health, health2, 'its health stays (same subnet)');
    assert.equal(prober.peer('10.9.3.0/24'), undefined, 'removed, with its health');
    assert.equal(p3.pos, -1, 'and out of the schedule');
    const p4 = prober.peer('10.9.4.0/24');
    assert.ok(p4 && p4.health.status === 'unknown' && p4.pos >= 0, 'added, with fresh health, scheduled');
    assert.deepEqual([...prober.peers().keys()].sort(), ['10.9.1.0/24', '10.9.2.0/24', '10.9.4.0/24']);
    assert.deepEqual([p1, p2, p4].map((p) => p.pos).sort(), [0, 1, 2], 'the schedule holds exactly the peers');
  } finally {
    prober.stop();
  }
});

test('upsertTarget and removeTarget (one lease event) do what a whole new set would', () => {
  const prober = newProber();
  try {
    const t1 = target(1);
    prober.setTargets([t1, target(2)]);
    const p1 = prober.peer(t1.key)!;
    const h1 = p1.health;
    p1.label = someLabel;
    prober.upsertTarget(target(1));
    assert.equal(prober.peer(t1.key), p1, 'the same target again: the same record');
    assert.equal(p1.label, someLabel, 'label kept');
    prober.upsertTarget(target(1, '192.0.2.77'));
    assert.equal(prober.peer(t1.key), p1);
    assert.equal(p1.publicIp, parseIp4('192.0.2.77'), 'a new PublicIP: written into the record');
    assert.equal(p1.label, undefined, 'label dropped');
    assert.equal(p1.health, h1, 'health kept for the same subnet');
    prober.upsertTarget(target(5));
    const p2 = prober.peer(target(2).key)!;
    prober.removeTarget(target(2).key);
    prober.removeTarget('10.9.99.0/24');
    assert.deepEqual([...prober.peers().keys()].sort(), [t1.key, target(5).key]);
    assert.equal(prober.peer(target(2).key), undefined);
    assert.equal(p2.pos, -1, 'the removed peer left the schedule');
    assert.deepEqual([p1.pos, prober.peer(target(5).key)!.pos].sort(), [0, 1]);
    prober.upsertTarget(target(2));
    const back = prober.peer(target(2).key)!;
    assert.notEqual(back, p2, 'back again: a new record');
    assert.ok(back.pos >= 0 && back.health.status === 'unknown' && back.label === undefined);
  } finally {
    prober.stop();
  }
});
