// Teardown (src/lab/teardown.ts): every step runs whatever failed before it; the failures come
// out together at the end, each with its fix command; a nested teardown's list is kept whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LabError } from '../../src/lab/errors';
import { Teardown } from '../../src/lab/teardown';

test('every step runs after a failing one; finish throws them all, with their commands', async () => {
  const t = new Teardown();
  const ran: string[] = [];
  await t.step('a', 'fix-a', () => ran.push('a'));
  await t.step('b', 'fix-b', () => {
    ran.push('b');
    throw Object.assign(new Error('unlink: busy'), { code: 'EBUSY' });
  });
  await t.step('c', 'fix-c', async () => {
    ran.push('c');
    throw new Error('async failure');
  });
  await t.step('d', 'fix-d', () => ran.push('d'));
  assert.deepEqual(ran, ['a', 'b', 'c', 'd']);
  assert.throws(
    () => t.finish('lab "x"'),
    (e: unknown) =>
      e instanceof LabError &&
      e.code === 'ERR_LAB_TEARDOWN' &&
      e.message.startsWith('lab "x": 2 thing(s) could not be removed') &&
      e.problems.length === 2 &&
      e.problems[0] === 'b: unlink: busy (EBUSY); to remove it: fix-b' &&
      e.problems[1] === 'c: async failure; to remove it: fix-c',
  );
});

test('nothing failed: finish does not throw', async () => {
  const t = new Teardown();
  await t.step('a', 'fix-a', () => undefined);
  await t.stop('a process never started', undefined);
  t.finish('x');
});

test("a nested teardown's problems are kept whole", async () => {
  const inner = new Teardown();
  await inner.step('namespace n1', 'cmd1', () => {
    throw new Error('EISDIR');
  });
  const outer = new Teardown();
  await outer.step('lab t1', 'down again', () => inner.finish('lab "t1"'));
  assert.equal(outer.problems.length, 1);
  assert.match(outer.problems[0]!.error, /namespace n1: EISDIR; to remove it: cmd1/);
});
