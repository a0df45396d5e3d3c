// twillctl against what does not answer, inside a fresh namespace: `leases` keeps its deadline
// and names the endpoint and the cause; `status --json` prints JSON when twilld is not there.
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { isRoot, Netns } from '../support/netns';
import { childEnv } from '../support/proc';

const TWILLCTL = path.resolve(__dirname, '../../src/cmd/twillctl.js');
const skip = isRoot() ? false : 'needs root (network namespaces)';
const ns = skip ? undefined : Netns.create('ctl');
after(() => ns?.delete());

function env(): NodeJS.ProcessEnv {
  const e = childEnv();
  for (const k of Object.keys(e)) if (k.startsWith('TWILLD_')) delete e[k];
  return e;
}

function twillctl(...args: string[]) {
  const t0 = Date.now();
  const r = spawnSync('ip', ['netns', 'exec', ns!.name, process.execPath, TWILLCTL, ...args], {
    encoding: 'utf8',
    env: env(),
    timeout: 60_000,
  });
  return { ...r, ms: Date.now() - t0 };
}

test('leases against a refused endpoint: fails at once naming endpoint and cause', { skip }, () => {
  const r = twillctl('leases', '--etcd-endpoints', 'http://127.0.0.1:2399');
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^twillctl: cannot read leases from etcd at http:\/\/127\.0\.0\.1:2399: connect ECONNREFUSED 127\.0\.0\.1:2399 /);
  assert.ok(r.ms < 5000, `${r.ms} ms`);
});

test('leases against an endpoint that never answers keeps its deadline (--timeout 2)', { skip }, async () => {
  // A TCP listener that accepts and says nothing: gRPC waits for its handshake.
  const silent = spawn('ip', ['netns', 'exec', ns!.name, process.execPath, '-e', "require('net').createServer(() => {}).listen(2398, '127.0.0.1', () => console.log('up'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => silent.stdout!.once('data', () => resolve()));
    const r = twillctl('leases', '--etcd-endpoints', 'http://127.0.0.1:2398', '--timeout', '2');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot read leases from etcd at http:\/\/127\.0\.0\.1:2398: no answer within 2 s/);
    assert.ok(r.ms < 4000, `took ${r.ms} ms for a 2 s deadline`);
  } finally {
    silent.kill('SIGKILL');
  }
});

test('status --json with no daemon: JSON on stdout all the same, exit 1', { skip }, () => {
  const r = twillctl('status', '--json', '--http-addr', '127.0.0.1:9464');
  assert.equal(r.status, 1);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(j['ready'], false);
  assert.equal(j['reachable'], false);
  assert.match(String(j['error']), /cannot reach twilld at http:\/\/127\.0\.0\.1:9464\/readyz: connect ECONNREFUSED/);
});
