import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { acquireAbstractLock, LockHeldError } from '../../src/netns/abstract-lock';

const lockName = (): string => `twilld-test-${randomBytes(4).toString('hex')}`;

test('a second holder is refused with the first one PID; after release it can take the lock', async () => {
  const name = lockName();
  const lock = await acquireAbstractLock(name);
  await assert.rejects(acquireAbstractLock(name), (err: unknown) => {
    assert.ok(err instanceof LockHeldError);
    assert.equal(err.code, 'ERR_LOCK_HELD');
    assert.equal(err.holderPid, process.pid);
    assert.match(err.message, new RegExp(`held by pid ${process.pid}$`));
    return true;
  });
  await lock.release();
  const again = await acquireAbstractLock(name);
  await again.release();
});

/** A child process that takes the lock, says so, then runs `then` (JS); refused here by its PID; SIGKILLed. */
async function refusedByChild(name: string, then: string): Promise<void> {
  const mod = require.resolve('../../src/netns/abstract-lock');
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(mod)}).acquireAbstractLock(${JSON.stringify(name)}).then(() => { console.log('held'); ${then} })`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await assert.rejects(acquireAbstractLock(name), (err: unknown) => err instanceof LockHeldError && err.holderPid === child.pid);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
}

test('the lock is released by the kernel when its holder dies (SIGKILL)', async () => {
  const name = lockName();
  await refusedByChild(name, 'setInterval(() => {}, 1000);');
  const lock = await acquireAbstractLock(name);
  await lock.release();
});

test('the holder is named by the kernel even while its event loop is blocked', async () => {
  // As an install copying files does: its event loop blocked for 3 s.
  await refusedByChild(lockName(), 'const t = Date.now() + 3000; while (Date.now() < t);');
});
