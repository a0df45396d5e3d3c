// Issue 4's proof: `twill-lab up --hosts 2 --pods 1` brings up a lab (installed through
// `twillctl install`, pods wired by the CNI plugin) whose pod×pod matrix is all reachable;
// `up` again changes nothing; `status` and `exec` work; `down` leaves no namespace, no
// process and no file behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { isRoot } from '../support/netns';
import { isRunning, type SpawnedProc } from '../../src/lab/procs';
import type { LabState } from '../../src/lab/lab';
import { Teardown } from '../../src/lab/teardown';

const LAB_CLI = path.resolve(__dirname, '../../src/cmd/twill-lab.js');
const skip = !isRoot() ? 'needs root' : !fs.existsSync('/usr/bin/etcd') ? 'needs /usr/bin/etcd (etcd-server)' : false;

const name = `c${randomBytes(3).toString('hex')}`;
const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), `twill-labcli-${name}-`)), 'lab');
const loc = ['--name', name, '--dir', dir];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function lab(...args: string[]): Promise<Run> {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  return new Promise((resolve) => {
    execFile(process.execPath, [LAB_CLI, ...args], { env, timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function show(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** The matrix rows of the printed report: pod name → cells. */
function matrix(stdout: string): Map<string, string[]> {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith('FROM \\ TO'));
  assert.ok(start >= 0, 'a matrix is printed');
  const rows = new Map<string, string[]>();
  for (const l of lines.slice(start + 1)) {
    if (l.trim() === '') break;
    const [from, ...cells] = l.trim().split(/\s+/);
    rows.set(from!, cells);
  }
  return rows;
}

function labNamespaces(): string[] {
  // `ip netns list` is the oracle a person would use; it complains on stderr about other
  // namespaces' peers, which is not ours to judge.
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`twl-${name}-`));
}

function recordedProcs(state: LabState): SpawnedProc[] {
  return [state.etcd, ...state.hosts.flatMap((h) => [h.daemon, h.cniServer])].filter((p): p is SpawnedProc => p !== undefined);
}

let state: LabState | undefined;

after(async () => {
  if (skip) return;
  // Whatever happened above, leave nothing behind; what cannot be removed fails the hook (with
  // down's own report) and its state stays for the printed command.
  const t = new Teardown();
  if (fs.existsSync(path.join(dir, 'lab.json'))) {
    await t.step(`lab ${name}`, `node ${LAB_CLI} down ${loc.join(' ')}`, async () => {
      const r = await lab('down', ...loc);
      if (r.code !== 0) throw new Error(show(r));
    });
  }
  if (t.problems.length === 0) await t.step(path.dirname(dir), `rm -rf ${path.dirname(dir)}`, () => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));
  t.finish('lab-cli teardown');
});

test('twill-lab up --hosts 2 --pods 1: every pod reaches every pod; exit 0', { skip }, async () => {
  const r = await lab('up', '--hosts', '2', '--pods', '1', ...loc);
  assert.equal(r.code, 0, show(r));
  const m = matrix(r.stdout);
  assert.deepEqual([...m.keys()], ['h1-p1', 'h2-p1'], show(r));
  for (const [from, cells] of m) assert.deepEqual(cells, ['ok', 'ok'], `${from}: ${show(r)}`);
  assert.match(r.stdout, /^all 4 pod pairs reachable/m);
  // Hosts show a subnet and a VTEP MAC, pods an address from their host's subnet.
  assert.match(r.stdout, /^h1\s+172\.30\.0\.11\s+10\.244\.\d+\.0\/24\s+([0-9a-f]{2}:){5}[0-9a-f]{2}\s+ready/m);
  assert.match(r.stdout, /^h1-p1\s+h1\s+10\.244\.\d+\.\d+\/24/m);

  state = JSON.parse(fs.readFileSync(path.join(dir, 'lab.json'), 'utf8')) as LabState;
  assert.equal(state.hosts.length, 2);
  assert.equal(state.pods.length, 2);
  for (const p of recordedProcs(state)) assert.ok(isRunning(p), `pid ${p.pid} (${p.marker}) runs`);
  assert.equal(labNamespaces().length, 5, 'underlay, 2 hosts, 2 pods');
  // The daemons run from the lab's install (twillctl install --root <dir>/root).
  for (const h of state.hosts) {
    const cmdline = fs.readFileSync(`/proc/${h.daemon!.pid}/cmdline`, 'utf8');
    assert.ok(cmdline.includes(path.join(dir, 'root')), cmdline);
  }
  // Each host's `twill-cni serve` (from the install too) answered its pod's ADD: the installed
  // front-end handed the call over instead of starting Node.
  for (const h of state.hosts) {
    assert.ok(h.cniServer, `${h.name} has a CNI server`);
    assert.ok(fs.readFileSync(`/proc/${h.cniServer.pid}/cmdline`, 'utf8').includes(path.join(dir, 'root')));
    const calls = fs
      .readFileSync(path.join(h.dir, 'twill-cni.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"CNI call"'))
      .map((l) => JSON.parse(l) as { command: string; containerId: string; exitCode: number });
    const pod = state.pods.find((p) => p.host === h.name)!;
    assert.ok(calls.some((c) => c.command === 'ADD' && c.containerId === pod.containerId && c.exitCode === 0), `${h.name}: ${JSON.stringify(calls)}`);
  }
});

test('up again on the running lab is a no-op: same daemons, same pod addresses', { skip }, async () => {
  assert.ok(state, 'first test ran');
  const r = await lab('up', '--hosts', '2', '--pods', '1', ...loc);
  assert.equal(r.code, 0, show(r));
  const again = JSON.parse(fs.readFileSync(path.join(dir, 'lab.json'), 'utf8')) as LabState;
  assert.deepEqual(
    again.hosts.map((h) => h.daemon?.pid),
    state.hosts.map((h) => h.daemon?.pid),
  );
  assert.equal(again.etcd?.pid, state.etcd?.pid);
  assert.deepEqual(
    again.pods.map((p) => `${p.name} ${p.ip}`),
    state.pods.map((p) => `${p.name} ${p.ip}`),
  );
  assert.equal(labNamespaces().length, 5);
});

test('status prints the matrix again; exec runs a command inside a pod', { skip }, async () => {
  assert.ok(state, 'first test ran');
  const s = await lab('status', ...loc);
  assert.equal(s.code, 0, show(s));
  assert.match(s.stdout, /^all 4 pod pairs reachable/m);

  const pod = state.pods[0]!;
  const e = await lab('exec', pod.name, ...loc, '--', 'ip', '-j', '-4', 'addr', 'show', 'dev', 'eth0');
  assert.equal(e.code, 0, show(e));
  const addrs = (JSON.parse(e.stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>)[0]!.addr_info;
  assert.deepEqual(
    addrs.map((a) => `${a.local}/${a.prefixlen}`),
    [pod.ip],
  );
  const code = await lab('exec', 'h1', ...loc, '--', 'sh', '-c', 'exit 7');
  assert.equal(code.code, 7, 'exec passes the exit status through');
});

test("the lab's installed twillctl lists both leases with their TTL", { skip }, () => {
  assert.ok(state, 'first test ran');
  const r = spawnSync(path.join(dir, 'root/usr/local/bin/twillctl'), ['leases', '--json', '--env-file', '/dev/null', '--etcd-endpoints', `unix://${path.join(dir, 'etcd.sock:0')}`], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ subnet: string; publicIp: string; vtepMac: string; ttlSeconds: number | null }>;
  assert.deepEqual(rows.map((x) => x.publicIp).sort(), ['172.30.0.11', '172.30.0.12']);
  for (const x of rows) {
    assert.match(x.subnet, /^10\.244\.\d+\.0\/24$/);
    assert.ok(x.ttlSeconds !== null && x.ttlSeconds > 80_000 && x.ttlSeconds <= 86_400, `TTL ${x.ttlSeconds}`);
  }
});

test('down removes every namespace, process and file of the lab', { skip }, async () => {
  assert.ok(state, 'first test ran');
  const r = await lab('down', ...loc);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(labNamespaces(), [], 'no namespace left');
  for (const p of recordedProcs(state)) assert.ok(!isRunning(p), `pid ${p.pid} (${p.marker}) is gone`);
  assert.ok(!fs.existsSync(dir), 'lab directory removed');
  // Nothing was ever added to the root namespace.
  const rootAddrs = spawnSync('ip', ['-j', 'addr'], { encoding: 'utf8' }).stdout;
  assert.ok(!rootAddrs.includes('"172.30.0.') && !rootAddrs.includes('"10.244.'), 'no lab address in the root namespace');
  const again = await lab('down', ...loc);
  assert.equal(again.code, 0, `down twice is fine: ${show(again)}`);
});
