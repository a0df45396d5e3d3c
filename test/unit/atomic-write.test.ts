// src/base/atomic-write.ts: the one way twill replaces a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tempPathFor, writeFileAtomic, writeFileAtomicSync } from '../../src/base/atomic-write';

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-atomic-'));
  test.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

const forms = [
  ['async', (f: string, d: string | Uint8Array, o: Parameters<typeof writeFileAtomicSync>[2]) => writeFileAtomic(f, d, o)],
  ['sync', async (f: string, d: string | Uint8Array, o: Parameters<typeof writeFileAtomicSync>[2]) => writeFileAtomicSync(f, d, o)],
] as const;

for (const [name, write] of forms) {
  test(`${name}: writes, replaces, sets the mode exactly and leaves no temporary file`, async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'subnet.env');
    const old = process.umask(0o077);
    try {
      await write(file, 'one\n', { mode: 0o644, durable: true });
      assert.equal(fs.readFileSync(file, 'utf8'), 'one\n');
      assert.equal(fs.statSync(file).mode & 0o777, 0o644, 'umask 077 does not narrow the mode');
      const inode = fs.statSync(file).ino;
      await write(file, Buffer.from('two'), { mode: 0o600, durable: false });
      assert.equal(fs.readFileSync(file, 'utf8'), 'two');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.notEqual(fs.statSync(file).ino, inode, 'replaced by rename, not rewritten in place');
      assert.deepEqual(fs.readdirSync(dir), ['subnet.env']);
    } finally {
      process.umask(old);
    }
  });

  test(`${name}: mkdirs creates missing parents; without it a missing directory fails`, async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'a', 'b', 'vtep-mac');
    await assert.rejects(write(file, 'x', { mode: 0o644, durable: true }), { code: 'ENOENT' });
    await write(file, 'x', { mode: 0o644, durable: true, mkdirs: true });
    assert.equal(fs.readFileSync(file, 'utf8'), 'x');
  });

  test(`${name}: a failed write leaves the old file and no temporary file behind`, async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'target');
    fs.writeFileSync(file, 'old');
    // Renaming a file over a non-empty directory fails after the temp file was written.
    const blocked = path.join(dir, 'blocked');
    fs.mkdirSync(blocked);
    fs.writeFileSync(path.join(blocked, 'x'), '');
    await assert.rejects(write(blocked, 'new', { mode: 0o644, durable: true }));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['blocked', 'target']);
    assert.equal(fs.readFileSync(file, 'utf8'), 'old');
  });

  test(`${name}: a symlink planted at a temporary name is never followed`, async () => {
    const dir = tmpDir();
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'keep');
    const file = path.join(dir, 'cache');
    // Whatever name is picked, O_EXCL refuses an existing path; show it on a planted one.
    const realRandom = Math.random;
    Math.random = () => 0.5;
    try {
      fs.symlinkSync(victim, tempPathFor(file));
      await assert.rejects(write(file, 'evil', { mode: 0o600, durable: false }), { code: 'EEXIST' });
    } finally {
      Math.random = realRandom;
    }
    assert.equal(fs.readFileSync(victim, 'utf8'), 'keep');
    assert.ok(!fs.existsSync(file));
  });
}

test('temporary names are hidden, beside the target, and differ per call', () => {
  const a = tempPathFor('/run/twill/subnet.env');
  const b = tempPathFor('/run/twill/subnet.env');
  assert.equal(path.dirname(a), '/run/twill');
  assert.match(path.basename(a), new RegExp(`^\\.subnet\\.env\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`));
  assert.notEqual(a, b);
});

test('concurrent writers: the file always holds one complete version', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'f');
  const versions = Array.from({ length: 20 }, (_, i) => `${String(i).repeat(5000)}\n`);
  await Promise.all(versions.map((v) => writeFileAtomic(file, v, { mode: 0o644, durable: false })));
  assert.ok(versions.includes(fs.readFileSync(file, 'utf8')));
  assert.deepEqual(fs.readdirSync(dir), ['f']);
});
