import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeltaTracker } from '../../src/dataplane/delta-tracker';

const eq = (a: string, b: string) => a === b;
const same = (d: string): string => d;

/** The desired side as the reconciler keeps it: its owner's map, adopted, changed in place and reported. */
function owned<D, A>(t: DeltaTracker<D, A>): { map(): Map<string, D>; set(k: string, v: D): void; del(k: string): void; replace(next: ReadonlyMap<string, D>): void } {
  let m = new Map<string, D>();
  t.adopt(m);
  return {
    map: () => m,
    set(k, v) {
      const was = m.get(k);
      m.set(k, v);
      t.changed(k, was);
    },
    del(k) {
      const was = m.get(k);
      m.delete(k);
      t.changed(k, was);
    },
    // The owner's next map (a rebuilt index): adopted, not copied.
    replace(next) {
      m = new Map(next);
      t.adopt(m);
    },
  };
}

test('desired but absent is a pending write; written clears it', () => {
  const t = new DeltaTracker<string>(eq, same);
  owned(t).set('a', 'x');
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
  owned(t).set('a', 'x');
  t.written('a');
  t.setActual('a', 'changed');
  assert.ok(t.isPendingWrite('a'));
  t.setActual('a', undefined);
  assert.ok(t.isPendingWrite('a'));
  t.setActual('a', 'x');
  assert.ok(t.inSync());
});

test('a new desired map (adopt) removes keys that are gone and keeps equal ones untouched', () => {
  const t = new DeltaTracker<string>(eq, same);
  const d = owned(t);
  d.replace(new Map([['a', '1'], ['b', '2']]));
  t.written('a');
  t.written('b');
  d.replace(new Map([['b', '2'], ['c', '3']]));
  assert.deepEqual(t.pendingDeletes(), [['a', '1']]);
  assert.deepEqual(t.pendingWrites(), [['c', '3']]);
});

test('replaceActual recomputes every key from a full dump', () => {
  const t = new DeltaTracker<string>(eq, same);
  owned(t).replace(new Map([['a', '1'], ['b', '2']]));
  t.replaceActual(new Map([['a', '1'], ['z', '9']]));
  assert.deepEqual(t.pendingWrites(), [['b', '2']]);
  assert.deepEqual(t.pendingDeletes(), [['z', '9']]);
  assert.equal(t.actualSize, 2);
  assert.equal(t.desiredSize, 2);
});

test('fillActual: a dump fed entry by entry; a restart forgets what the interrupted attempt showed', () => {
  const t = new DeltaTracker<string>(eq, same);
  owned(t).replace(new Map([['a', '1'], ['b', '2'], ['c', '3']]));
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
  const d = owned(t);
  const a1 = { ip: '10.0.0.1' };
  d.replace(new Map([['a', a1]]));
  t.written('a');
  assert.ok(t.inSync());
  assert.deepEqual(t.getActual('a'), { ip: '10.0.0.1', index: 3 });
  // Another object asking for the same: taken in (the plan's old entry is not kept alive), still in sync.
  const a2 = { ip: '10.0.0.1' };
  d.replace(new Map([['a', a2]]));
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
 * Random runs against a model that keeps both sides whole (the tracker keeps the actual side
 * only where it differs from the desired one, issue 13): random changes to either side — the
 * owner's map changed in place and reported, a new map adopted, kernel events, writes and
 * deletes done, full dumps — and after each, pending work, both sides and the sizes must match.
 */
function modelRuns(seed: number): void {
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
  const vals = ['1', '2', '3'];
  const fresh = (): Map<string, string> => new Map(keys.filter(() => rnd(2) === 0).map((x) => [x, vals[rnd(vals.length)]!] as [string, string]));
  for (let run = 0; run < 200; run++) {
    const t = new DeltaTracker<string>(eq, same);
    const desired = owned(t);
    const actual = new Map<string, string>();
    for (let n = 0; n < 40; n++) {
      const k = keys[rnd(keys.length)]!;
      const v = vals[rnd(vals.length)]!;
      switch (rnd(8)) {
        case 0: desired.set(k, v); break;
        case 1: desired.del(k); break;
        case 2: t.setActual(k, v); actual.set(k, v); break;
        case 3: t.setActual(k, undefined); actual.delete(k); break;
        case 4: t.written(k); if (desired.map().has(k)) actual.set(k, desired.map().get(k)!); break;
        case 5: t.deleted(k); actual.delete(k); break;
        case 6: desired.replace(fresh()); break;
        default: {
          const next = fresh();
          t.replaceActual(next);
          actual.clear();
          for (const [x, y] of next) actual.set(x, y);
        }
      }
      const d = desired.map();
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
  modelRuns(7);
  modelRuns(11);
});
