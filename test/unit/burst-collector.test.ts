import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BurstCollector } from '../../src/daemon/burst-collector';
import { setTimeout as sleep } from 'node:timers/promises';

test('bursts in a row are collected once, after the settle delay from the last; stop cancels a pending collection', async () => {
  let runs = 0;
  const order: string[] = [];
  const c = new BurstCollector(() => order.push('before'), () => (runs++, order.push('gc')), 30);
  assert.equal(c.available, true);
  c.burstDone();
  await sleep(20);
  c.burstDone();
  await sleep(20);
  c.burstDone();
  assert.equal(runs, 0, 'not at once, and not 30 ms after the first: the last burst’s follow-ups run first');
  await sleep(80);
  assert.equal(runs, 1);
  assert.equal(c.runs, 1);
  assert.deepEqual(order, ['before', 'gc']);
  c.burstDone();
  c.stop();
  await sleep(80);
  assert.equal(runs, 1, 'stopped before it ran');
});

test('without a gc function (node without --expose-gc) only the clean-up before it runs', async () => {
  let before = 0;
  const c = new BurstCollector(() => before++, undefined, 1);
  assert.equal(c.available, false);
  c.burstDone();
  await sleep(20);
  assert.equal(c.runs, 0);
  assert.equal(before, 1);
});

test('the governor collects when the committed heap grew the slack past what the last collection left, not before, and not while a burst is pending', async () => {
  let heap = 40;
  let runs = 0;
  const c = new BurstCollector(() => undefined, () => {
    runs++;
    heap = 41; // what the collection leaves
  }, 30, () => heap);
  c.watchHeap(5, 6);
  await sleep(30);
  assert.equal(runs, 0, 'no growth yet');
  heap = 45;
  await sleep(30);
  assert.equal(runs, 0, 'grown less than the slack');
  heap = 47;
  await sleep(30);
  assert.equal(runs, 1, 'grown past the slack: collected once');
  heap = 46;
  await sleep(30);
  assert.equal(runs, 1, 'the floor is now what that collection left (41)');
  heap = 48;
  c.burstDone();
  await sleep(15);
  assert.equal(runs, 1, 'a pending burst collection is not preempted');
  await sleep(60);
  assert.equal(runs, 2, 'the burst collection ran, and with it the floor moved');
  c.stop();
  heap = 100;
  await sleep(30);
  assert.equal(runs, 2, 'stopped');
});
