// Issue 17: `twill-lab down` always completes. Both cases run the CLI inside a private mount
// namespace whose /run is a fresh tmpfs (support/private-run.ts): the lab starts on a /run/netns
// that is not a mount point, as on a fresh machine, and nothing done there (bind mounts of
// /run/netns, namespace files, the foreign `ip netns add`) reaches the real machine, where
// other tests run. Whatever the body leaves running in that namespace is killed by PID.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isRoot } from '../support/netns';
import { runPrivate } from '../support/private-run';

const skip = !isRoot() ? 'needs root' : !fs.existsSync('/usr/bin/etcd') ? 'needs /usr/bin/etcd (etcd-server)' : false;
const SCRIPT = path.resolve(__dirname, '../support/lab-private.js');

test('up on a plain /run/netns, a foreign ip netns add, then down: exit 0, no namespace, mount or process left', { skip, timeout: 600_000 }, async () => {
  const run = await runPrivate(SCRIPT, ['foreign', `f${randomBytes(3).toString('hex')}`]);
  assert.equal(run.code, 0, run.stderr);
  const r = run.results[0]!;
  assert.equal(r['wasMountPoint'], false, '/run/netns was not a mount point before up');
  assert.equal(r['up'], 0, String(r['upErr']));
  assert.equal(r['foreignAdd'], 0);
  assert.equal(r['down'], 0, String(r['downOut']));
  assert.deepEqual(r['leftFiles'], [], 'no namespace file left');
  assert.deepEqual(r['leftMounts'], [], 'no nsfs mount left');
  assert.deepEqual(r['running'], [], 'no recorded process running');
  assert.equal(r['labDir'], false, 'the lab directory is gone');
  assert.deepEqual(run.leftover, [], 'nothing at all left running in that mount namespace');
  console.log(`foreign ip netns add: ${r['recorded']} processes and ${r['namespaces']} namespaces removed; down exit ${r['down']}`);
});

test('down with one step failing still stops every process, removes the rest and reports what it could not', { skip, timeout: 600_000 }, async () => {
  const name = `x${randomBytes(3).toString('hex')}`;
  const run = await runPrivate(SCRIPT, ['failing', name]);
  assert.equal(run.code, 0, run.stderr);
  const r = run.results[0]!;
  assert.equal(r['up'], 0, String(r['upErr']));
  assert.equal(r['down'], 1, 'down exits non-zero');
  const err = String(r['downErr']);
  assert.match(err, /\[ERR_LAB_TEARDOWN\]/);
  assert.match(err, new RegExp(`namespace twl-${name}-bogus: .*EISDIR.*; to remove it: unshare --mount`), 'the failure is reported with the command that removes it');
  const a = r['afterFailed'] as Record<string, unknown>;
  assert.deepEqual(a['running'], [], 'every recorded process was stopped anyway');
  assert.deepEqual(a['leftFiles'], [`twl-${name}-bogus`], 'every other namespace was removed');
  assert.deepEqual(a['leftMounts'], [], 'no nsfs mount left');
  assert.equal(r['stateKept'], true, 'the state is kept for another down');
  assert.equal(r['again'], 0, `once fixed, down again completes: ${r['againOut']}`);
  assert.equal(r['labDir'], false);
  assert.deepEqual(run.leftover, [], 'nothing at all left running in that mount namespace');
  console.log(`failing step: down exit ${r['down']}, ${r['recorded']} processes stopped; report:\n${err}`);
});
