// The etcd3 patches (src/subnet/etcd3-patches.ts, etcd3-schema-patch.ts): they fit the installed
// etcd3, the self-check refuses what they do not fit, and each patch does what it says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import {
  dedupeWatchReconnects, ETCD3_PATCHED_VERSION, etcd3PatchProblems, installedEtcd3Version, SCHEMA_PATCH_MARK, WATCH_RECONNECT_MAX_MS, WatchBackoff,
} from '../../src/subnet/etcd3-patches';
import { etcd3SchemaPlugin, LOAD_CALL, LOADER_REQUIRE } from '../../src/subnet/etcd3-schema-patch';

const REPO = path.resolve(__dirname, '../../..');

function idleClient(): Etcd3 {
  // Nothing is sent until a call is made; port 1 makes sure nothing could answer.
  return new Etcd3({ hosts: 'http://127.0.0.1:1' });
}

test('the installed and pinned etcd3 is the version the patches fit', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.equal(pkg.dependencies['etcd3'], ETCD3_PATCHED_VERSION, 'package.json pins exactly this version');
  assert.equal(installedEtcd3Version(), ETCD3_PATCHED_VERSION);
});

test('self-check: a real client passes; another version, a changed shape or a foreign bundle do not', () => {
  const client = idleClient();
  try {
    assert.deepEqual(etcd3PatchProblems(client), []);
    assert.match(etcd3PatchProblems(client, '1.2.0').join(), /etcd3 1\.2\.0 is installed; .* fit 1\.1\.2/);
    const key = Symbol.for(SCHEMA_PATCH_MARK);
    const g = globalThis as Record<symbol, unknown>;
    const before = g[key];
    g[key] = '1.0.0';
    try {
      assert.match(etcd3PatchProblems(client).join(), /schema patch was built for 1\.0\.0/);
    } finally {
      g[key] = before;
    }
  } finally {
    client.close();
  }
  const reshaped = { watchManager: { handleError: () => undefined } } as unknown as Etcd3;
  assert.match(etcd3PatchProblems(reshaped).join(), /no watchManager\.handleError\/establishStream/);
  assert.match(etcd3PatchProblems({} as unknown as Etcd3).join(), /no watchManager/);
});

test('dedupeWatchReconnects: one stream failure arms one reconnect, re-armed by establishStream', () => {
  const calls: string[] = [];
  const wm = {
    handleError(err: Error): void {
      calls.push(`handle ${err.message}`);
    },
    establishStream(): void {
      calls.push('establish');
    },
  };
  dedupeWatchReconnects({ watchManager: wm } as unknown as Etcd3);
  wm.handleError(new Error('error'));
  wm.handleError(new Error('end')); // the same dead stream's 'end': dropped
  wm.establishStream();
  wm.handleError(new Error('again'));
  assert.deepEqual(calls, ['handle error', 'establish', 'handle again']);
});

test('dedupeWatchReconnects applies to a real etcd3 client', () => {
  const client = idleClient();
  try {
    const wm = (client as unknown as { watchManager: { handleError: unknown } }).watchManager;
    const original = wm.handleError;
    dedupeWatchReconnects(client);
    assert.notEqual(wm.handleError, original);
  } finally {
    client.close();
  }
});

test('WatchBackoff: jittered, capped at 5 s, and 0 once closed', () => {
  let closed = false;
  let b = new WatchBackoff(-1, () => closed);
  const seen: number[] = [];
  for (let i = 0; i < 12; i++) {
    seen.push(b.duration);
    b = b.next();
  }
  assert.ok(seen[0]! >= 100 && seen[0]! <= 200, `first ${seen[0]}`);
  assert.ok(seen.every((d) => d <= WATCH_RECONNECT_MAX_MS));
  assert.ok(seen[11]! >= WATCH_RECONNECT_MAX_MS / 2);
  closed = true;
  assert.equal(b.duration, 0);
});

test('schema patch: etcd3 loads its schema the way the patch replaces, and its build-time checks pass', () => {
  const pool = fs.readFileSync(path.join(path.dirname(require.resolve('etcd3/package.json')), 'lib', 'connection-pool.js'), 'utf8');
  assert.ok(pool.includes(LOAD_CALL));
  assert.ok(pool.includes(LOADER_REQUIRE));
  const plugin = etcd3SchemaPlugin(REPO); // throws when a check fails
  assert.equal(plugin.name, 'etcd3-schema');
});
