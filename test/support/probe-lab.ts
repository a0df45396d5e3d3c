// Issue 14's end-to-end proof as one scenario, run per backend (test/e2e/probe-health*.test.ts),
// 3 hosts on one underlay segment, every twilld probing every peer (interval 1 s here):
// `twillctl check` is healthy; one host's port on the underlay bridge lowered to MTU 1400
// (full-size frames dropped, small ones pass) → check names that host and `mtu` within a few
// probe intervals, and `trace` from a pod on another host to a pod there fails at the
// full-size hop; restored → healthy; the port taken down → `unreachable`, recovered when it
// comes back. Nothing in it depends on the backend but the pod MTU and the pod path: probes
// follow the route to the peer's subnet, whatever entries sit under it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { waitFor } from './netns';
import { createTestLab } from './lab';
import { cleanEnv, labNetworkConfig, type Lab, type LabBackend, type LabHost, type LabPod } from '../../src/lab/lab';
import type { CheckReport } from '../../src/probe/cluster-view';

const TWILLCTL = path.resolve(__dirname, '../../src/cmd/twillctl.js');
const INTERVAL_S = 1;

export type CheckResult = { status: number; report: CheckReport | null; out: string };

/** twillctl and the underlay bridge of one lab, as the scenario drives them. */
export class ProbeLab {
  constructor(
    readonly lab: Lab,
    readonly hosts: LabHost[],
  ) {}

  ctl(host: LabHost, ...args: string[]): { status: number; stdout: string } {
    const etcd = args[0] === 'status' ? [] : ['--etcd-endpoints', this.lab.etcdEndpoint];
    const r = spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, TWILLCTL, ...args, ...etcd, '--env-file', '/dev/null'], {
      encoding: 'utf8',
      env: cleanEnv(),
      timeout: 30_000,
    });
    return { status: r.status ?? -1, stdout: r.stdout + r.stderr };
  }

  check(): CheckResult {
    const r = this.ctl(this.hosts[0]!, 'check', '--json');
    try {
      return { status: r.status, report: JSON.parse(r.stdout) as CheckReport, out: r.stdout };
    } catch {
      return { status: r.status, report: null, out: r.stdout };
    }
  }

  /** Polls `check` until `ok` holds for it; returns the seconds it took. */
  async checkUntil(ok: (c: CheckResult) => boolean, what: string, timeoutMs = 30_000): Promise<number> {
    const t0 = Date.now();
    let last = this.check();
    await waitFor(
      () => {
        last = this.check();
        return ok(last);
      },
      timeoutMs,
      what,
      250,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nlast check output:\n${last.out}`);
    });
    return (Date.now() - t0) / 1000;
  }

  /** A host's port on the underlay bridge, as src/lab/topology.ts names it. */
  static bridgePort(h: LabHost): string {
    return `u-${h.ns.slice(-12)}`.slice(0, 15);
  }

  /** `ip` in the lab's underlay namespace (the bridge every host hangs on). */
  underlay(...args: string[]): void {
    const r = spawnSync('ip', ['-n', this.lab.state.underlayNs, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
}

export const healthy = (c: CheckResult): boolean => c.status === 0 && c.report?.healthy === true && c.report.complete;

export interface ProbeScenario {
  backend: LabBackend;
  /** The pod MTU the backend gives 1500-byte underlay links: the full-size probe's size. */
  podMtu: number;
  /** Checks only this backend needs, after the daemons are ready (host-gw: its device). */
  afterReady?: (p: ProbeLab) => void;
}

const podIp = (p: LabPod): string => p.ip!.split('/')[0]!;

/** Registers the scenario's hooks and tests in the calling test file. */
export function probeHealthScenario(s: ProbeScenario, skip: string | false): void {
  let p: ProbeLab;
  let pods: LabPod[];
  const figures: string[] = [];

  before(async () => {
    if (skip) return;
    const lab = await createTestLab({ networkConfig: labNetworkConfig(s.backend) });
    const hosts = [lab.addHost(), lab.addHost(), lab.addHost()];
    p = new ProbeLab(lab, hosts);
    for (const h of hosts) lab.startDaemon(h, ['--probe-interval', String(INTERVAL_S)]);
    for (const h of hosts) await lab.waitReady(h);
    pods = [await lab.addPod(hosts[0]!), await lab.addPod(hosts[2]!)];
  });

  after(async () => {
    if (skip) return;
    if (figures.length) process.stdout.write(`# probe figures (${s.backend}): ${figures.join('; ')}\n`);
    await p?.lab.down();
  });

  test(`${s.backend}: all healthy: check exits 0, every host reports every peer ok`, { skip, timeout: 60_000 }, async () => {
    const { hosts, lab } = p;
    assert.match(fs.readFileSync(lab.subnetFile(hosts[0]!), 'utf8'), new RegExp(`FLANNEL_MTU=${s.podMtu}\\b`));
    s.afterReady?.(p);
    const secs = await p.checkUntil(healthy, 'check healthy and complete');
    figures.push(`healthy view ${secs.toFixed(1)} s after ready`);
    const c = p.check();
    assert.equal(c.report!.hosts.length, 3);
    for (const h of c.report!.hosts) assert.deepEqual([h.name, h.ok, h.peers, h.report], [hosts.find((x) => x.ip === h.publicIp)!.name, 2, 2, 'ok']);
    const peersView = p.ctl(hosts[0]!, 'status', '--peers', '--http-addr', '127.0.0.1:9464');
    assert.equal(peersView.status, 0, peersView.stdout);
    assert.equal(peersView.stdout.match(/\bok\s+[\d.]+ ms\s+ok\b/g)?.length, 2, peersView.stdout);
    const t = p.ctl(hosts[0]!, 'trace', podIp(pods[0]!), podIp(pods[1]!));
    assert.equal(t.status, 0, t.stdout);
    assert.match(t.stdout, /path OK/);
  });

  test(`${s.backend}: one host behind MTU 1400 on the underlay bridge: check names it and mtu; trace fails at full size; restored: healthy`, { skip, timeout: 90_000 }, async () => {
    const { hosts } = p;
    const h3 = hosts[2]!;
    p.underlay('link', 'set', ProbeLab.bridgePort(h3), 'mtu', '1400');
    try {
      const secs = await p.checkUntil((c) => c.status === 1 && (c.report?.suspects.length ?? 0) === 1, 'check names one suspect');
      figures.push(`mtu detected in ${secs.toFixed(1)} s (${(secs / INTERVAL_S).toFixed(1)} probe intervals)`);
      const r = p.check().report!;
      assert.deepEqual(r.suspects.map((x) => [x.host.name, x.host.publicIp, x.host.subnet, x.kinds]), [[h3.name, h3.ip, r.hosts.find((x) => x.name === h3.name)!.subnet, ['mtu']]]);
      assert.ok(r.problems.every((x) => x.kind === 'mtu' && (x.from.name === h3.name || x.to.name === h3.name)), JSON.stringify(r.problems));
      const text = p.ctl(hosts[0]!, 'check');
      assert.equal(text.status, 1);
      assert.match(text.stdout, new RegExp(`likely cause: ${h3.name} \\(${h3.ip.replace(/\./g, '\\.')}, `));
      const t = p.ctl(hosts[0]!, 'trace', podIp(pods[0]!), podIp(pods[1]!));
      assert.equal(t.status, 1, t.stdout);
      assert.match(t.stdout, /✓ probe +small probe over the overlay answered/);
      assert.match(t.stdout, new RegExp(`✗ full size +${s.podMtu}-byte DF probes lost while small ones pass, and 1500-byte DF datagrams over the underlay are lost too`));
      assert.match(t.stdout, /BROKEN at full size/);
      // Peer health never changes readiness.
      for (const h of hosts) assert.equal(p.ctl(h, 'status', '--http-addr', '127.0.0.1:9464').status, 0, `${h.name} stays ready`);
    } finally {
      p.underlay('link', 'set', ProbeLab.bridgePort(h3), 'mtu', '1500');
    }
    const secs = await p.checkUntil(healthy, 'healthy again after the MTU is restored');
    figures.push(`mtu recovery seen in ${secs.toFixed(1)} s`);
  });

  test(`${s.backend}: one host's underlay link down: reported unreachable, recovered when it comes back`, { skip, timeout: 90_000 }, async () => {
    const { hosts } = p;
    const h3 = hosts[2]!;
    p.underlay('link', 'set', ProbeLab.bridgePort(h3), 'down');
    try {
      const secs = await p.checkUntil(
        (c) => c.status === 1 && c.report!.problems.filter((x) => x.to.name === h3.name && x.kind === 'unreachable').length === 2,
        'both other hosts report h3 unreachable',
      );
      figures.push(`unreachable detected in ${secs.toFixed(1)} s`);
      const r = p.check().report!;
      assert.deepEqual(r.suspects.map((x) => [x.host.name, x.kinds]), [[h3.name, ['unreachable']]]);
      const t = p.ctl(hosts[0]!, 'trace', podIp(pods[0]!), podIp(pods[1]!));
      assert.equal(t.status, 1);
      assert.match(t.stdout, /✗ probe +nothing answered, over the overlay or the underlay/);
    } finally {
      p.underlay('link', 'set', ProbeLab.bridgePort(h3), 'up');
    }
    const secs = await p.checkUntil(healthy, 'healthy again after the link is back', 60_000);
    figures.push(`unreachable recovery seen in ${secs.toFixed(1)} s`);
  });
}
