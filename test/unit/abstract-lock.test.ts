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

test('the lock is released by the kernel when its holder dies (SIGKILL)', async () => {
  const name = lockName();
  const mod = require.resolve('../../src/netns/abstract-lock');
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(mod)}).acquireAbstractLock(${JSON.stringify(name)}).then(() => { console.log('held'); setInterval(() => {}, 1000); })`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await assert.rejects(acquireAbstractLock(name), (err: unknown) => err instanceof LockHeldError && err.holderPid === child.pid);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  const lock = await acquireAbstractLock(name);
  await lock.release();
});

test('the holder is named by the kernel even while its event loop is blocked', async () => {
  const name = lockName();
  const mod = require.resolve('../../src/netns/abstract-lock');
  // Takes the lock, says so, then blocks its event loop for 3 s (as an install copying files does).
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(mod)}).acquireAbstractLock(${JSON.stringify(name)}).then(() => { console.log('held'); const t = Date.now() + 3000; while (Date.now() < t); })`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await assert.rejects(acquireAbstractLock(name), (err: unknown) => err instanceof LockHeldError && err.holderPid === child.pid);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
});
