import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeltaTracker } from '../../src/dataplane/delta-tracker';

const eq = (a: string, b: string) => a === b;
const same = (d: string): string => d;

test('desired but absent is a pending write; written clears it', () => {
  const t = new DeltaTracker<string>(eq, same);
  t.setDesired('a', 'x');
  assert.deepEqual(t.pendingWrites(), [['a', 'x']]);
  t.written('a');
  assert.ok(t.inSync());
  assert.equal(t.getActual('a'), 'x');
});

test('actual but not desired is a pending delete; deleted clears it', () => {
  const t = new DeltaTracker<string>(eq, same);
  t.replaceActual(new Map([['orphan', 'o']]));
  assert.deepEqual(t.pendingDeletes(), [['orphan', 'o']]);
  t.deleted('orphan');
  assert.ok(t.inSync());
});

test('a different actual value is a pending write (drift)', () => {
  const t = new DeltaTracker<string>(eq, same);
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
  const t = new DeltaTracker<string>(eq, same);
  t.replaceDesired(new Map([['a', '1'], ['b', '2']]));
  t.written('a');
  t.written('b');
  t.replaceDesired(new Map([['b', '2'], ['c', '3']]));
  assert.deepEqual(t.pendingDeletes(), [['a', '1']]);
  assert.deepEqual(t.pendingWrites(), [['c', '3']]);
});

test('replaceActual recomputes every key from a full dump', () => {
  const t = new DeltaTracker<string>(eq, same);
  t.replaceDesired(new Map([['a', '1'], ['b', '2']]));
  t.replaceActual(new Map([['a', '1'], ['z', '9']]));
  assert.deepEqual(t.pendingWrites(), [['b', '2']]);
  assert.deepEqual(t.pendingDeletes(), [['z', '9']]);
  assert.equal(t.actualSize, 2);
  assert.equal(t.desiredSize, 2);
});

test('fillActual: a dump fed entry by entry; a restart forgets what the interrupted attempt showed', () => {
  const t = new DeltaTracker<string>(eq, same);
  t.replaceDesired(new Map([['a', '1'], ['b', '2'], ['c', '3']]));
  t.replaceActual(new Map([['a', '1'], ['b', '2'], ['c', '3']]));
  assert.ok(t.inSync());
  const shown: Array<string | undefined> = [];
  t.fillActual((into) => {
    // Interrupted attempt: shows a, b and an orphan, then the dump starts over.
    into.see('a', '1');
    into.see('b', '2');
    into.see('orphan', 'o');
    shown.push(into.seen('b'), into.seen('c'));
    into.restart();
    shown.push(into.seen('a'));
    // Second attempt: a changed, b gone, c as desired, the orphan gone.
    into.see('a', 'other');
    into.see('c', '3');
    into.see('c', '3');
    shown.push(into.seen('a'));
  });
  assert.deepEqual(shown, ['2', undefined, undefined, 'other']);
  assert.deepEqual(t.pendingWrites().sort(), [['a', '1'], ['b', '2']]);
  assert.deepEqual(t.pendingDeletes(), []);
  assert.equal(t.getActual('a'), 'other');
  assert.equal(t.getActual('b'), undefined);
  assert.equal(t.getActual('orphan'), undefined);
  assert.equal(t.actualSize, 2);
});

test('desired entries and kernel values of different shapes: bound through actualOf; a new binding (device index) makes in-sync keys pending and keeps what the kernel holds', () => {
  interface Entry { ip: string }
  interface Held { ip: string; index: number }
  let index = 3;
  const bind = (e: Entry): Held => ({ ip: e.ip, index });
  const t = new DeltaTracker<Entry, Held>((e, a) => e.ip === a.ip && a.index === index, bind);
  const a1 = { ip: '10.0.0.1' };
  t.replaceDesired(new Map([['a', a1]]));
  t.written('a');
  assert.ok(t.inSync());
  assert.deepEqual(t.getActual('a'), { ip: '10.0.0.1', index: 3 });
  // Another object asking for the same: taken in (the plan's old entry is not kept alive), still in sync.
  const a2 = { ip: '10.0.0.1' };
  t.replaceDesired(new Map([['a', a2]]));
  assert.equal(t.getDesired('a'), a2);
  assert.ok(t.inSync());
  // The device was recreated: index 7.
  t.pin();
  index = 7;
  t.resettle();
  assert.deepEqual(t.pendingWriteKeys(), ['a']);
  assert.deepEqual(t.getActual('a'), { ip: '10.0.0.1', index: 3 }, 'the kernel still holds the entry on the old index');
  t.written('a');
  assert.deepEqual(t.getActual('a'), { ip: '10.0.0.1', index: 7 });
  // A binding change that changes nothing leaves nothing pending.
  t.pin();
  t.resettle();
  assert.ok(t.inSync());
});

/**
 * Random runs against a model that keeps both sides whole: `step` applies one random operation
 * (a number 0..`ops`-1) to the tracker and to the model's maps; after each, pending work, the
 * actual side and the sizes must match. Operations past `ops` replace the actual side (a dump).
 */
function modelRuns(seed: number, ops: number, setup: (t: DeltaTracker<string>) => { desired: () => Map<string, string> }, step: (t: DeltaTracker<string>, op: number, k: string, v: string, actual: Map<string, string>, fresh: () => Map<string, string>) => void): void {
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
  const vals = ['1', '2', '3'];
  const fresh = (): Map<string, string> => new Map(keys.filter(() => rnd(2) === 0).map((x) => [x, vals[rnd(vals.length)]!] as [string, string]));
  for (let run = 0; run < 200; run++) {
    const t = new DeltaTracker<string>(eq, same);
    const { desired } = setup(t);
    const actual = new Map<string, string>();
    for (let n = 0; n < 40; n++) {
      const k = keys[rnd(keys.length)]!;
      const v = vals[rnd(vals.length)]!;
      const op = rnd(ops + 1);
      if (op < ops) step(t, op, k, v, actual, fresh);
      else {
        const next = fresh();
        t.replaceActual(next);
        actual.clear();
        for (const [x, y] of next) actual.set(x, y);
      }
      const d = desired();
      const writes = keys.filter((x) => d.has(x) && actual.get(x) !== d.get(x));
      const deletes = keys.filter((x) => !d.has(x) && actual.has(x));
      assert.deepEqual(t.pendingWriteKeys().sort(), writes, `run ${run} step ${n}`);
      assert.deepEqual(t.pendingDeletes().sort(), deletes.map((x) => [x, actual.get(x)!]));
      for (const x of keys) {
        assert.equal(t.getActual(x), actual.get(x));
        assert.equal(t.getDesired(x), d.get(x));
        assert.equal(t.isPendingWrite(x), writes.includes(x));
      }
      assert.equal(t.actualSize, actual.size);
      assert.equal(t.desiredSize, d.size);
      assert.equal(t.inSync(), writes.length + deletes.length === 0);
    }
  }
}

test('after random changes to either side, pending work and the actual side match a model holding both sides in full', () => {
  // The tracker keeps the actual side only where it differs from the desired one (issue 13):
  // this model keeps both maps whole, as the tracker did before.
  const desired = new Map<string, string>();
  modelRuns(
    7,
    7,
    () => {
      desired.clear();
      return { desired: () => desired };
    },
    (t, op, k, v, actual, fresh) => {
      switch (op) {
        case 0: t.setDesired(k, v); desired.set(k, v); break;
        case 1: t.deleteDesired(k); desired.delete(k); break;
        case 2: t.setActual(k, v); actual.set(k, v); break;
        case 3: t.setActual(k, undefined); actual.delete(k); break;
        case 4: t.written(k); if (desired.has(k)) actual.set(k, desired.get(k)!); break;
        case 5: t.deleted(k); actual.delete(k); break;
        default: {
          const next = fresh();
          t.replaceDesired(next);
          desired.clear();
          for (const [x, y] of next) desired.set(x, y);
        }
      }
    },
  );
});

test('a shared desired map (adopt): changed in place by its owner and reported with what it held; pending work and the actual side match a model', () => {
  let shared = new Map<string, string>();
  modelRuns(
    11,
    6,
    (t) => {
      shared = new Map();
      t.adopt(shared);
      return { desired: () => shared };
    },
    (t, op, k, v, actual, fresh) => {
      const was = shared.get(k);
      switch (op) {
        case 0: shared.set(k, v); t.changed(k, was); break;
        case 1: shared.delete(k); t.changed(k, was); break;
        case 2: t.setActual(k, v); actual.set(k, v); break;
        case 3: t.written(k); if (shared.has(k)) actual.set(k, shared.get(k)!); break;
        case 4: t.deleted(k); actual.delete(k); break;
        default:
          // The owner's next map (a rebuilt index): adopted, not copied.
          shared = fresh();
          t.adopt(shared);
      }
    },
  );
});
