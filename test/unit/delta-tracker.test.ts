import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeltaTracker } from '../../src/dataplane/delta-tracker';

const eq = (a: string, b: string) => a === b;

test('desired but absent is a pending write; written clears it', () => {
  const t = new DeltaTracker<string>(eq);
  t.setDesired('a', 'x');
  assert.deepEqual(t.pendingWrites(), [['a', 'x']]);
  t.written('a');
  assert.ok(t.inSync());
  assert.equal(t.getActual('a'), 'x');
});

test('actual but not desired is a pending delete; deleted clears it', () => {
  const t = new DeltaTracker<string>(eq);
  t.replaceActual(new Map([['orphan', 'o']]));
  assert.deepEqual(t.pendingDeletes(), [['orphan', 'o']]);
  t.deleted('orphan');
  assert.ok(t.inSync());
});

test('a different actual value is a pending write (drift)', () => {
  const t = new DeltaTracker<string>(eq);
  t.setDesired('a', 'x');
  t.written('a');
  t.setActual('a', 'changed');
  assert.ok(t.isPendingWrite('a'));
  t.setActual('a', undefined);
  assert.ok(t.isPendingWrite('a'));
  t.setActual('a', 'x');
  assert.ok(t.inSync());
});

test('replaceDesired removes keys that are gone and keeps equal ones untouched', () => {
  const t = new DeltaTracker<string>(eq);
  t.replaceDesired(new Map([['a', '1'], ['b', '2']]));
  t.written('a');
  t.written('b');
  t.replaceDesired(new Map([['b', '2'], ['c', '3']]));
  assert.deepEqual(t.pendingDeletes(), [['a', '1']]);
  assert.deepEqual(t.pendingWrites(), [['c', '3']]);
});

test('replaceActual recomputes every key from a full dump', () => {
  const t = new DeltaTracker<string>(eq);
  t.replaceDesired(new Map([['a', '1'], ['b', '2']]));
  t.replaceActual(new Map([['a', '1'], ['z', '9']]));
  assert.deepEqual(t.pendingWrites(), [['b', '2']]);
  assert.deepEqual(t.pendingDeletes(), [['z', '9']]);
  assert.equal(t.actualSize, 2);
  assert.equal(t.desiredSize, 2);
});
