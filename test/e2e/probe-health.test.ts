// Issue 14's end-to-end proof, 3 hosts: every twilld probes every peer (interval 1 s here);
// `twillctl check` is healthy; one host's port on the underlay bridge lowered to MTU 1400
// (full-size encapsulated frames dropped, small ones pass) → check names that host and `mtu`
// within a few probe intervals, and `trace` from a pod on another host to a pod there fails
// at the full-size hop; restored → healthy; the port taken down → `unreachable`, recovered
// when it comes back. Nothing here depends on the backend: probes follow the route to the
// peer's subnet, whatever entries sit under it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { isRoot, waitFor } from '../support/netns';
import { createTestLab } from '../support/lab';
import { cleanEnv, type Lab, type LabHost, type LabPod } from '../../src/lab/lab';
import type { CheckReport } from '../../src/probe/cluster-view';

const skip = !isRoot() ? 'needs root' : false;
const TWILLCTL = path.resolve(__dirname, '../../src/cmd/twillctl.js');
const INTERVAL_S = 1;
let lab: Lab;
let hosts: LabHost[];
let pods: LabPod[];
const figures: string[] = [];

function ctl(host: LabHost, ...args: string[]): { status: number; stdout: string } {
  const etcd = args[0] === 'status' ? [] : ['--etcd-endpoints', lab.etcdEndpoint];
  const r = spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, TWILLCTL, ...args, ...etcd, '--env-file', '/dev/null'], {
    encoding: 'utf8',
    env: cleanEnv(),
    timeout: 30_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout + r.stderr };
}

function check(): { status: number; report: CheckReport | null; out: string } {
  const r = ctl(hosts[0]!, 'check', '--json');
  try {
    return { status: r.status, report: JSON.parse(r.stdout) as CheckReport, out: r.stdout };
  } catch {
    return { status: r.status, report: null, out: r.stdout };
  }
}

/** Polls `check` until `ok` holds for it; returns the seconds it took. */
async function checkUntil(ok: (c: ReturnType<typeof check>) => boolean, what: string, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  let last = check();
  await waitFor(
    () => {
      last = check();
      return ok(last);
    },
    timeoutMs,
    `${what}; last check:\n${last.out}`,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast check output:\n${last.out}`);
  });
  return (Date.now() - t0) / 1000;
}

function bridgePort(h: LabHost): string {
  return `u-${h.ns.slice(-12)}`.slice(0, 15); // as src/lab/topology.ts names it
}

function underlay(...args: string[]): void {
  const r = spawnSync('ip', ['-n', lab.state.underlayNs, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

const healthy = (c: ReturnType<typeof check>): boolean => c.status === 0 && c.report?.healthy === true && c.report.complete;

before(async () => {
  if (skip) return;
  lab = await createTestLab();
  hosts = [lab.addHost(), lab.addHost(), lab.addHost()];
  for (const h of hosts) lab.startDaemon(h, ['--probe-interval', String(INTERVAL_S)]);
  for (const h of hosts) await lab.waitReady(h);
  pods = [await lab.addPod(hosts[0]!), await lab.addPod(hosts[2]!)];
});

after(async () => {
  if (skip) return;
  if (figures.length) process.stdout.write(`# probe figures: ${figures.join('; ')}\n`);
  await lab?.down();
});

test('all healthy: check exits 0, every host reports every peer ok', { skip, timeout: 60_000 }, async () => {
  const s = await checkUntil(healthy, 'check healthy and complete');
  figures.push(`healthy view ${s.toFixed(1)} s after ready`);
  const c = check();
  assert.equal(c.report!.hosts.length, 3);
  for (const h of c.report!.hosts) assert.deepEqual([h.name, h.ok, h.peers, h.report], [hosts.find((x) => x.ip === h.publicIp)!.name, 2, 2, 'ok']);
  const peersView = ctl(hosts[0]!, 'status', '--peers', '--http-addr', '127.0.0.1:9464');
  assert.equal(peersView.status, 0, peersView.stdout);
  assert.equal(peersView.stdout.match(/\bok\s+[\d.]+ ms\s+ok\b/g)?.length, 2, peersView.stdout);
  const t = ctl(hosts[0]!, 'trace', pods[0]!.ip!.split('/')[0]!, pods[1]!.ip!.split('/')[0]!);
  assert.equal(t.status, 0, t.stdout);
  assert.match(t.stdout, /path OK/);
});

test('one host behind MTU 1400 on the underlay bridge: check names it and mtu; trace fails at full size; restored: healthy', { skip, timeout: 90_000 }, async () => {
  const h3 = hosts[2]!;
  underlay('link', 'set', bridgePort(h3), 'mtu', '1400');
  try {
    const s = await checkUntil((c) => c.status === 1 && (c.report?.suspects.length ?? 0) === 1, 'check names one suspect');
    figures.push(`mtu detected in ${s.toFixed(1)} s (${(s / INTERVAL_S).toFixed(1)} probe intervals)`);
    const r = check().report!;
    assert.deepEqual(r.suspects.map((x) => [x.host.name, x.host.publicIp, x.host.subnet, x.kinds]), [[h3.name, h3.ip, r.hosts.find((x) => x.name === h3.name)!.subnet, ['mtu']]]);
    assert.ok(r.problems.every((p) => p.kind === 'mtu' && (p.from.name === h3.name || p.to.name === h3.name)), JSON.stringify(r.problems));
    const text = ctl(hosts[0]!, 'check');
    assert.equal(text.status, 1);
    assert.match(text.stdout, new RegExp(`likely cause: ${h3.name} \\(${h3.ip.replace(/\./g, '\\.')}, `));
    const t = ctl(hosts[0]!, 'trace', pods[0]!.ip!.split('/')[0]!, pods[1]!.ip!.split('/')[0]!);
    assert.equal(t.status, 1, t.stdout);
    assert.match(t.stdout, /✓ probe +small probe over the overlay answered/);
    assert.match(t.stdout, /✗ full size +1450-byte DF probes lost while small ones pass, and 1500-byte DF datagrams over the underlay are lost too/);
    assert.match(t.stdout, /BROKEN at full size/);
    // Peer health never changes readiness.
    for (const h of hosts) assert.equal(ctl(h, 'status', '--http-addr', '127.0.0.1:9464').status, 0, `${h.name} stays ready`);
  } finally {
    underlay('link', 'set', bridgePort(h3), 'mtu', '1500');
  }
  const s = await checkUntil(healthy, 'healthy again after the MTU is restored');
  figures.push(`mtu recovery seen in ${s.toFixed(1)} s`);
});

test("one host's underlay link down: reported unreachable, recovered when it comes back", { skip, timeout: 90_000 }, async () => {
  const h3 = hosts[2]!;
  underlay('link', 'set', bridgePort(h3), 'down');
  try {
    const s = await checkUntil(
      (c) => c.status === 1 && c.report!.problems.filter((p) => p.to.name === h3.name && p.kind === 'unreachable').length === 2,
      'both other hosts report h3 unreachable',
    );
    figures.push(`unreachable detected in ${s.toFixed(1)} s`);
    const r = check().report!;
    assert.deepEqual(r.suspects.map((x) => [x.host.name, x.kinds]), [[h3.name, ['unreachable']]]);
    const t = ctl(hosts[0]!, 'trace', pods[0]!.ip!.split('/')[0]!, pods[1]!.ip!.split('/')[0]!);
    assert.equal(t.status, 1);
    assert.match(t.stdout, /✗ probe +nothing answered, over the overlay or the underlay/);
  } finally {
    underlay('link', 'set', bridgePort(h3), 'up');
  }
  const s = await checkUntil(healthy, 'healthy again after the link is back', 60_000);
  figures.push(`unreachable recovery seen in ${s.toFixed(1)} s`);
});
