import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyOrder } from '../../src/dataplane/apply-order';

const route = { name: 'route', layer: 0 };
const neigh = { name: 'neigh', layer: 1 };
const fdb = { name: 'fdb', layer: 2 };
const steps = (tables: Array<{ name: string; layer: number }>) => applyOrder(tables).map((s) => `${s.op} ${s.table.name}`);

test('routes are deleted first, everything is written bottom-up, then lower layers are deleted top-down', () => {
  // Whatever order the driver lists its tables in.
  for (const tables of [[route, neigh, fdb], [fdb, route, neigh]]) {
    assert.deepEqual(steps(tables), ['delete route', 'write fdb', 'write neigh', 'write route', 'delete neigh', 'delete fdb']);
  }
});

test('a backend with routes only: delete, then write', () => {
  assert.deepEqual(steps([route]), ['delete route', 'write route']);
  assert.deepEqual(steps([]), []);
});
