import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { SubnetFileKeeper, type SubnetFileDrift } from '../../src/daemon/subnet-file-keeper';
import { writeSubnetFile } from '../../src/subnet/subnet-file';

const TEXT = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n';
const silent = pino({ level: 'silent' });

async function waitFor(check: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

/** A keeper whose writes take 150 ms, so the state between drift and repair can be seen. */
function slowKeeper(file: string, checkIntervalMs = 60_000) {
  const changes: boolean[] = [];
  const repaired: SubnetFileDrift[] = [];
  const keeper = new SubnetFileKeeper(file, silent, {
    checkIntervalMs,
    onChange: (v) => changes.push(v),
    onRepaired: (d) => repaired.push(d),
    write: async (f, t) => {
      await new Promise((r) => setTimeout(r, 150));
      await writeSubnetFile(f, t);
    },
  });
  return { keeper, changes, repaired };
}

/** A slow keeper on a fresh file, stopped after `fn`. */
async function withKeeper(checkIntervalMs: number, fn: (k: ReturnType<typeof slowKeeper>, file: string) => Promise<void>): Promise<void> {
  const file = await tmpFile();
  const k = slowKeeper(file, checkIntervalMs);
  try {
    await fn(k, file);
  } finally {
    k.keeper.stop();
  }
}

async function tmpFile(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'twill-keeper-'));
  return path.join(dir, 'run', 'subnet.env');
}

test('a deleted subnet file is rewritten within 1 s, and is not in sync meanwhile', () =>
  withKeeper(60_000, async ({ keeper, changes, repaired }, file) => {
    await keeper.set(TEXT);
    assert.equal(keeper.inSync, true);
    assert.equal(fs.readFileSync(file, 'utf8'), TEXT);
    fs.rmSync(file);
    await waitFor(() => !keeper.inSync, 1000, 'the keeper to notice the deletion');
    assert.equal(fs.existsSync(file), false, 'not in sync while the file is missing');
    const took = await waitFor(() => keeper.inSync && fs.existsSync(file), 1000, 'the rewrite');
    assert.ok(took < 1000);
    assert.equal(fs.readFileSync(file, 'utf8'), TEXT);
    assert.deepEqual(repaired, ['missing']);
    assert.deepEqual(changes, [true, false, true]);
  }));

test('an edited subnet file is put back within 1 s', () =>
  withKeeper(60_000, async ({ keeper, repaired }, file) => {
    await keeper.set(TEXT);
    fs.writeFileSync(file, TEXT.replace('1450', '9000'));
    await waitFor(() => !keeper.inSync, 1000, 'the keeper to notice the edit');
    await waitFor(() => keeper.inSync, 1000, 'the rewrite');
    assert.equal(fs.readFileSync(file, 'utf8'), TEXT);
    assert.deepEqual(repaired, ['different']);
  }));

test('the whole directory removed: the periodic check recreates it and the watch is re-made', () =>
  withKeeper(200, async ({ keeper, repaired }, file) => {
    await keeper.set(TEXT);
    fs.rmSync(path.dirname(file), { recursive: true });
    await waitFor(() => fs.existsSync(file) && keeper.inSync, 1000, 'the file to be back');
    // The new directory is watched: a second deletion is also repaired.
    fs.rmSync(file);
    await waitFor(() => fs.existsSync(file) && keeper.inSync, 1000, 'the file to be back again');
    assert.deepEqual(repaired, ['missing', 'missing']);
  }));

test('our own rewrite (new desired text) is not reported as drift', () =>
  withKeeper(60_000, async ({ keeper, repaired }, file) => {
    await keeper.set(TEXT);
    await keeper.set(TEXT.replace('1450', '1400'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fs.readFileSync(file, 'utf8'), TEXT.replace('1450', '1400'));
    assert.equal(keeper.inSync, true);
    assert.deepEqual(repaired, []);
  }));

test('a write that fails rejects set() and leaves the keeper out of sync', async () => {
  const file = await tmpFile();
  const keeper = new SubnetFileKeeper(file, silent, {
    checkIntervalMs: 60_000,
    write: async () => {
      throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
    },
  });
  try {
    await assert.rejects(keeper.set(TEXT), (err: Error & { code?: string }) => err.code === 'ERR_SUBNET_FILE_WRITE' && /EROFS/.test(String((err.cause as Error).message)));
    assert.equal(keeper.inSync, false);
  } finally {
    keeper.stop();
  }
});
