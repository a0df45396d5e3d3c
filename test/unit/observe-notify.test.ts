import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createNotifier, watchdogIntervalMs } from '../../src/observe/notify';

function fakeSender(result = true): { sent: string[]; send: (s: string) => boolean } {
  const sent: string[] = [];
  return { sent, send: (s) => (sent.push(s), result) };
}

test('ready, stopping and status send the sd_notify assignments and pass the result through', () => {
  const f = fakeSender();
  const n = createNotifier(f.send, { env: {} });
  assert.equal(n.ready(), true);
  assert.equal(n.status('leased 10.244.7.0/24\nconverged'), true);
  assert.equal(n.stopping(), true);
  assert.deepEqual(f.sent, ['READY=1', 'STATUS=leased 10.244.7.0/24 converged', 'STOPPING=1']);
  // Outside systemd the native sender returns false; that is not an error.
  assert.equal(createNotifier(fakeSender(false).send, { env: {} }).ready(), false);
});

test('a throwing sender is contained', () => {
  const n = createNotifier(() => {
    throw new Error('socket gone');
  }, { env: {} });
  assert.equal(n.ready(), false);
});

test('watchdogIntervalMs: half of WATCHDOG_USEC, only for our pid', () => {
  assert.equal(watchdogIntervalMs({}, 42), null);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42), 15000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 15000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42), null);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42), null);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 42), null);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '1000' }, 42), 1); // floor at 1 ms
});

test('startWatchdog pings immediately and then periodically until stopped', async () => {
  const f = fakeSender();
  const n = createNotifier(f.send, { env: { WATCHDOG_USEC: '20000', WATCHDOG_PID: String(process.pid) } });
  assert.equal(n.startWatchdog(), 10);
  assert.equal(n.startWatchdog(), 10); // idempotent: no second timer
  assert.deepEqual(f.sent, ['WATCHDOG=1']);
  await sleep(80);
  n.stopWatchdog();
  const count = f.sent.length;
  assert.ok(count >= 3 && count <= 10, `expected ~8 pings, got ${count}`);
  assert.ok(f.sent.every((s) => s === 'WATCHDOG=1'));
  await sleep(40);
  assert.equal(f.sent.length, count, 'pings continued after stopWatchdog');
});

test('startWatchdog does nothing when the watchdog is for another pid or not configured', async () => {
  for (const env of [{}, { WATCHDOG_USEC: '20000', WATCHDOG_PID: String(process.pid + 1) }]) {
    const f = fakeSender();
    const n = createNotifier(f.send, { env });
    assert.equal(n.startWatchdog(), null);
    await sleep(30);
    assert.deepEqual(f.sent, []);
  }
});

test('the watchdog timer does not keep the process alive', () => {
  const mod = path.resolve(__dirname, '../../src/observe/notify.js');
  const script = `
    const { createNotifier } = require(${JSON.stringify(mod)});
    const n = createNotifier(() => true, { env: { WATCHDOG_USEC: '100000' } });
    if (n.startWatchdog() !== 50) process.exit(3);
  `;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 5000 });
  assert.equal(r.error, undefined);
  assert.equal(r.status, 0);
});
