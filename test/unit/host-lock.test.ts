import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { acquireHostLock, HostLockedError } from '../../src/daemon/host-lock';

const lockName = (): string => `twilld-test-${randomBytes(4).toString('hex')}`;

test('a second holder is refused with the first one PID; after release it can take the lock', async () => {
  const name = lockName();
  const lock = await acquireHostLock(name);
  await assert.rejects(acquireHostLock(name), (err: unknown) => {
    assert.ok(err instanceof HostLockedError);
    assert.equal(err.code, 'ERR_DAEMON_RUNNING');
    assert.equal(err.holderPid, process.pid);
    assert.match(err.message, new RegExp(`another twilld \\(pid ${process.pid}\\)`));
    return true;
  });
  await lock.release();
  const again = await acquireHostLock(name);
  await again.release();
});

test('the lock is released by the kernel when its holder dies (SIGKILL)', async () => {
  const name = lockName();
  const mod = require.resolve('../../src/daemon/host-lock');
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(mod)}).acquireHostLock(${JSON.stringify(name)}).then(() => { console.log('held'); setInterval(() => {}, 1000); })`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await assert.rejects(acquireHostLock(name), (err: unknown) => err instanceof HostLockedError && err.holderPid === child.pid);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  const lock = await acquireHostLock(name);
  await lock.release();
});

test('a squatter that does not answer is reported without a PID', async () => {
  const name = lockName();
  const squatter = net.createServer(() => undefined);
  await new Promise<void>((r) => squatter.listen({ path: `\0${name}` }, r));
  try {
    await assert.rejects(acquireHostLock(name), (err: unknown) => err instanceof HostLockedError && err.holderPid === undefined && /did not say its PID/.test(err.message));
  } finally {
    squatter.close();
  }
});
