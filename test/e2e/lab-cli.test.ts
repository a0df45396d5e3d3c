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
import { EtcdAdmin } from '../../src/subnet/etcd-admin';
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
  for (const [from, cells] of m) {
    assert.deepEqual(cells.slice(0, 2), ['ok', 'ok'], `${from}: ${show(r)}`);
    // OUTSIDE: reached, and seen as the pod's host underlay address (masqueraded).
    assert.deepEqual(cells.slice(2), ['ok', 'from', from.startsWith('h1') ? '172.30.0.11' : '172.30.0.12'], `${from}: ${show(r)}`);
  }
  assert.match(r.stdout, /^FROM \\ TO\s+h1-p1\s+h2-p1\s+OUTSIDE$/m);
  assert.match(r.stdout, /^all 4 pod pairs reachable/m);
  // Hosts show a subnet and a VTEP MAC, pods an address from their host's subnet.
  assert.match(r.stdout, /^h1\s+172\.30\.0\.11\s+10\.244\.\d+\.0\/24\s+([0-9a-f]{2}:){5}[0-9a-f]{2}\s+ready/m);
  assert.match(r.stdout, /^h1-p1\s+h1\s+10\.244\.\d+\.\d+\/24/m);

  state = JSON.parse(fs.readFileSync(path.join(dir, 'lab.json'), 'utf8')) as LabState;
  assert.equal(state.hosts.length, 2);
  assert.equal(state.pods.length, 2);
  for (const p of recordedProcs(state)) assert.ok(isRunning(p), `pid ${p.pid} (${p.marker}) runs`);
  assert.equal(labNamespaces().length, 6, 'underlay, outside, 2 hosts, 2 pods');
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
  assert.equal(labNamespaces().length, 6);
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

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string, every = 5): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
  return Date.now() - t0;
}

function logOf(host: string): string {
  return fs.readFileSync(path.join(dir, host, 'twilld.log'), 'utf8');
}

test('exec h1 -- twillctl leases: the lab\'s twillctl, with the lab\'s settings', { skip }, async () => {
  assert.ok(state, 'first test ran');
  const r = await lab('exec', 'h1', ...loc, '--', 'twillctl', 'leases', '--json');
  assert.equal(r.code, 0, show(r));
  const rows = JSON.parse(r.stdout) as Array<{ publicIp: string }>;
  assert.deepEqual(rows.map((x) => x.publicIp).sort(), ['172.30.0.11', '172.30.0.12']);
  const which = await lab('exec', 'h1', ...loc, '--', 'sh', '-c', 'command -v twillctl');
  assert.equal(which.stdout.trim(), path.join(dir, 'root/usr/local/bin/twillctl'));
});

test('the subnet file is converged: deleted or edited, it is back within 1 s; unwritable, readiness says why', { skip }, async () => {
  assert.ok(state, 'first test ran');
  const file = path.join(dir, 'h1', 'subnet.env');
  const want = fs.readFileSync(file, 'utf8');
  fs.rmSync(file);
  const back = await until(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8') === want, 1000, 'the deleted subnet file to be rewritten');
  fs.writeFileSync(file, want.replace(/FLANNEL_MTU=\d+/, 'FLANNEL_MTU=9000'));
  const back2 = await until(() => fs.readFileSync(file, 'utf8') === want, 1000, 'the edited subnet file to be put back');
  assert.ok(back < 1000 && back2 < 1000, `${back} ms, ${back2} ms`);
  // Each repair is logged (just after the rename that the loops above saw).
  await until(() => /"drift":"missing".*"msg":"subnet file repaired"/.test(logOf('h1')), 1000, 'the missing file logged');
  await until(() => /"drift":"different".*"msg":"subnet file repaired"/.test(logOf('h1')), 1000, 'the edited file logged');

  // A directory in its place cannot be replaced by a rename: not ready, and status says why.
  // The daemon may put the file back between the rm and the mkdir: try again then.
  for (let i = 0; ; i++) {
    fs.rmSync(file, { force: true });
    try {
      fs.mkdirSync(file);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 50) throw err;
    }
  }
  try {
    let st: { ready: boolean; reasons: string[]; blocking: { subject: string; error: string; next: string } | null } | undefined;
    await until(
      async () => {
        const r = await lab('exec', 'h1', ...loc, '--', 'twillctl', 'status', '--json');
        st = JSON.parse(r.stdout) as typeof st;
        return r.code === 1 && st!.ready === false;
      },
      10_000,
      'h1 not ready',
      200,
    );
    assert.deepEqual(st!.reasons, [`subnet file ${file} not written`]);
    assert.equal(st!.blocking?.subject, `subnet file ${file}`);
    assert.match(st!.blocking!.error, /EISDIR/);
    const text = await lab('exec', 'h1', ...loc, '--', 'twillctl', 'status');
    assert.equal(text.code, 1);
    assert.match(text.stdout, /NOT READY\n  - subnet file .* not written\n  blocked by       subnet file .*EISDIR/);
    assert.match(text.stdout, /next step        remove what is in its place, or make its directory writable/);
  } finally {
    fs.rmSync(file, { recursive: true, force: true });
  }
  await until(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8') === want, 6000, 'the subnet file after the directory went');
  const ok = await until(async () => (await lab('exec', 'h1', ...loc, '--', 'twillctl', 'status')).code === 0, 5000, 'h1 ready again', 100);
  assert.ok(ok < 5000);
});

test('a second twilld on h1 exits non-zero naming the first one\'s PID, and touches nothing', { skip }, async () => {
  assert.ok(state, 'first test ran');
  const first = state.hosts[0]!.daemon!.pid;
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-second-'));
  const logBefore = logOf('h1').length;
  try {
    const r = await lab('exec', 'h1', ...loc, '--', path.join(dir, 'root/usr/local/bin/twilld'),
      '--etcd-endpoints', 'http://172.30.0.1:2379', '--http-addr', '127.0.0.1:9465', '--log-format', 'text',
      '--state-dir', path.join(other, 'state'), '--subnet-file', path.join(other, 'subnet.env'));
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, new RegExp(`FATAL another twilld runs on this host; exiting without touching anything .*another twilld \\(pid ${first}\\)`));
    assert.deepEqual(fs.readdirSync(other), [], 'no state dir, no subnet file');
    await new Promise((res) => setTimeout(res, 500));
    const since = logOf('h1').slice(logBefore);
    assert.doesNotMatch(since, /put back|underlay changed|device/, 'the first daemon saw nothing to repair');
    assert.ok(isRunning(state.hosts[0]!.daemon!));
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
});

test('a network config change in etcd is logged once; up with no flags keeps the size and that config', { skip, timeout: 120_000 }, async () => {
  assert.ok(state, 'first test ran');
  const changed = '{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMax":"10.244.200.0","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}';
  const admin = await EtcdAdmin.connect([`unix://${path.join(dir, 'etcd.sock:0')}`]);
  try {
    await admin.put('/coreos.com/network/config', changed);
    await until(() => logOf('h1').includes('"msg":"network config changed in etcd; restart twilld to apply it (systemctl restart twilld)"'), 35_000, 'the change logged', 200);
    const r = await lab('up', ...loc);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual([...matrix(r.stdout).keys()], ['h1-p1', 'h2-p1'], 'still 2 hosts with 1 pod each');
    assert.equal(await admin.get('/coreos.com/network/config'), changed, 'the config in etcd is kept');
    assert.equal(logOf('h1').split('"msg":"network config changed in etcd').length - 1, 1, 'logged once');
  } finally {
    admin.close();
  }
});

test('the lab\'s daemons keep their code cache inside the lab', { skip }, () => {
  assert.ok(state, 'first test ran');
  const cacheDir = path.join(dir, 'root/var/cache/twill/twilld');
  const files = fs.readdirSync(cacheDir).filter((f) => f.endsWith('.v8cache'));
  assert.ok(files.length > 0, `a cache file in ${cacheDir}`);
  cacheFiles.push(...files);
});

const cacheFiles: string[] = [];

test('down removes every namespace, process and file of the lab', { skip }, async () => {
  assert.ok(state, 'first test ran');
  const r = await lab('down', ...loc);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(labNamespaces(), [], 'no namespace left');
  for (const p of recordedProcs(state)) assert.ok(!isRunning(p), `pid ${p.pid} (${p.marker}) is gone`);
  assert.ok(!fs.existsSync(dir), 'lab directory removed');
  for (const f of cacheFiles) assert.ok(!fs.existsSync(path.join('/var/cache/twill/twilld', f)), `no ${f} in the machine-wide cache`);
  // Nothing was ever added to the root namespace.
  const rootAddrs = spawnSync('ip', ['-j', 'addr'], { encoding: 'utf8' }).stdout;
  assert.ok(!rootAddrs.includes('"172.30.0.') && !rootAddrs.includes('"10.244.'), 'no lab address in the root namespace');
  const again = await lab('down', ...loc);
  assert.equal(again.code, 0, `down twice is fine: ${show(again)}`);
});
