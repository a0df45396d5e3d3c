// twill's namespace files coexist with iproute2 (issue 17): `ip netns add` (anyone's) never
// shadows them, and `ip netns` keeps working beside twill. The "not a mount point" cases run in
// a private mount namespace with its own /run (support/private-run.ts): the real machine's
// /run/netns is never changed by hand, and other tests run beside this one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { isRoot, uniqueName } from '../support/netns';
import { churn } from '../support/netns-churn';
import { runPrivate } from '../support/private-run';

const skip = !isRoot() ? 'needs root' : false;
const SCRIPT = path.resolve(__dirname, '../support/netns-churn.js');
const N = 200;

function assertClean(r: Record<string, unknown>, what: string): void {
  assert.deepEqual(r['failures'], [], `${what}: twill's creates and deletes all succeed`);
  assert.equal(r['created'], N);
  assert.deepEqual(r['ipFailures'], [], `${what}: the ip netns loop beside it never fails`);
  assert.ok((r['ipRounds'] as number) > 0, `${what}: the ip netns loop ran meanwhile`);
  assert.deepEqual(r['leftFiles'], [], `${what}: no namespace file left`);
  assert.deepEqual(r['leftMounts'], [], `${what}: no nsfs mount left`);
  assert.equal(r['sharedAfter'], true, `${what}: /run/netns is a shared mount point afterwards`);
}

test(`${N} namespaces created and deleted through twill beside an ip netns add/del loop (this machine's /run/netns)`, { skip, timeout: 300_000 }, async () => {
  const r = await churn(uniqueName('chr'), N);
  console.log(`real /run/netns: ${r.created} twill namespaces, ${r.ipRounds} ip netns rounds beside them, ${r.failures.length + r.ipFailures.length} failures`);
  assertClean(r as unknown as Record<string, unknown>, 'real /run/netns');
});

test(`the same where /run/netns was not a mount point: twill and ip race to make it one`, { skip, timeout: 300_000 }, async () => {
  const run = await runPrivate(SCRIPT, ['churn', uniqueName('chp'), String(N)]);
  assert.equal(run.code, 0, run.stderr);
  const r = run.results[0]!;
  console.log(`private /run/netns: ${r['created']} twill namespaces, ${r['ipRounds']} ip netns rounds beside them`);
  assert.equal(r['wasMountPoint'], false, 'the body started on a plain /run/netns');
  assertClean(r, 'plain /run/netns');
  assert.deepEqual(run.leftover, [], 'nothing left running in that mount namespace');
});

test('twill first on a plain /run/netns makes it a shared mount point; then ip netns del removes twill\'s namespace and twill removes ip\'s', { skip }, async () => {
  const run = await runPrivate(SCRIPT, ['interop', uniqueName('iop')]);
  assert.equal(run.code, 0, run.stderr);
  const r = run.results[0]!;
  assert.equal(r['wasMountPoint'], false);
  assert.deepEqual(r['afterCreate'], { mountPoint: true, shared: true }, 'what ip netns add does before its first mount');
  assert.equal(r['ipAdd'], 0);
  assert.equal(r['ipDel'], 0, `ip netns del removes twill's namespace (${r['ipDelError']})`);
  assert.equal(r['twDel'], true, "twill removes iproute2's");
  assert.deepEqual(r['leftFiles'], []);
  assert.deepEqual(r['leftMounts'], []);
});

test('a namespace an older twill left on a plain /run/netns, shadowed by ip netns add, is still deleted', { skip }, async () => {
  const run = await runPrivate(SCRIPT, ['shadowed', uniqueName('shd')]);
  assert.equal(run.code, 0, run.stderr);
  const r = run.results[0]!;
  assert.equal(r['wasMountPoint'], false);
  assert.equal(r['made'], 0, 'unshare --net=FILE made the old-style namespace');
  assert.equal(r['foreignAdd'], 0);
  assert.notEqual(r['ipDelStatus'], 0, `the shadowed file cannot be removed by ip netns del (${r['ipDelError']})`);
  assert.equal(r['deleted'], true, 'deleteNetns removed it');
  assert.deepEqual(r['leftFiles'], []);
  assert.deepEqual(r['leftMounts'], [], 'no nsfs mount of it left, shadowed copy included');
  assert.equal(r['foreignThere'], true, "the foreign namespace was not touched");
});
