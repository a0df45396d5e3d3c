// The installed CNI plugin as runtimes run it: the native front-end (/opt/cni/bin/twill of an
// install under a temp root) in a throwaway "host" namespace, with `twill serve` running there
// (the twill-cni unit's job) or not. What must hold: with the server, calls are answered by it
// and the answers are the Node plugin's own; without it (stopped, squatted by a non-root
// listener, fed junk) the front-end still answers by running the Node plugin; only root may
// use the server. `ip -j` is the independent oracle for what ADD/DEL did.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Netns, eventually, ipJson, deleteAll, isRoot, uniqueName, sh, waitFor } from '../support/netns';
import { Teardown } from '../../src/lab/teardown';
import { inNetns } from '../../src/netns/netns';
import { install } from '../../src/install/install';
import { CNI_NODE_PLUGIN_PATH, CNI_PLUGIN_PATH } from '../../src/install/layout';
import { hostVethName } from '../../src/cni/names';

const skip = !isRoot() ? 'needs root' : false;
const NOBODY = 65534;

let tmp: string;
let root: string;
let host: Netns;
let server: { proc: ChildProcess; log: () => string } | undefined;
const pods: Netns[] = [];
const others: Netns[] = [];

interface Call {
  code: number | null;
  stdout: string;
  stderr: string;
}

function call(ns: Netns, plugin: string, env: Record<string, string>, stdin: string, uid?: number): Promise<Call> {
  return new Promise((resolve, reject) => {
    const p = inNetns(ns.path, () =>
      spawn(plugin, [], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_PATH: '/usr/lib/cni', ...env }, stdio: ['pipe', 'pipe', 'pipe'], ...(uid !== undefined ? { uid, gid: uid } : {}) }),
    );
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d));
    p.stderr!.on('data', (d: Buffer) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin!.on('error', () => undefined);
    p.stdin!.end(stdin);
  });
}

const front = (): string => path.join(root, CNI_PLUGIN_PATH);
const nodePlugin = (): string => path.join(root, CNI_NODE_PLUGIN_PATH);

function conf(): string {
  return JSON.stringify({ cniVersion: '1.1.0', name: 'frontnet', type: 'twill', subnetFile: path.join(tmp, 'subnet.env'), dataDir: path.join(tmp, 'data') });
}

function newPod(): Netns {
  const ns = new Netns(uniqueName('cnfp'));
  sh('ip', ['netns', 'add', ns.name]);
  pods.push(ns);
  return ns;
}

function attach(pod: Netns, id: string): Record<string, string> {
  return { CNI_CONTAINERID: id, CNI_IFNAME: 'eth0', CNI_NETNS: pod.path };
}

function allocations(): string[] {
  const dir = path.join(tmp, 'data', 'frontnet');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
}

function hostHasLink(name: string): boolean {
  return ipJson(host.name, 'link', 'show').some((l) => l['ifname'] === name);
}

async function startServer(): Promise<void> {
  let log = '';
  const proc = inNetns(host.path, () => spawn(nodePlugin(), ['serve'], { env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'ignore', 'pipe'] }));
  proc.stderr!.on('data', (d: Buffer) => (log += d));
  server = { proc, log: () => log };
  await waitFor(() => log.includes('"msg":"serving CNI calls"'), 15_000, 'twill serve listening', 20);
}

async function stopServer(): Promise<number | null> {
  const s = server;
  server = undefined;
  if (!s || s.proc.exitCode !== null) return s?.proc.exitCode ?? null;
  const exited = new Promise<number | null>((r) => s.proc.on('exit', (code) => r(code)));
  s.proc.kill('SIGTERM');
  return exited;
}

/** Lines the server logged about calls for `containerId`. */
function served(containerId: string): Array<Record<string, unknown>> {
  return (server?.log() ?? '')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['containerId'] === containerId);
}

before(async () => {
  if (skip) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-cni-front-'));
  fs.chmodSync(tmp, 0o755); // the non-root caller below must reach the installed programs
  root = path.join(tmp, 'root');
  await install({ root });
  fs.writeFileSync(path.join(tmp, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.9.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  host = Netns.create('cnfh');
  await startServer();
});

after(async () => {
  if (skip) return;
  const t = new Teardown();
  const pid = server?.proc.pid;
  await t.step('twill serve', `kill -9 ${pid}`, () => stopServer());
  await deleteAll(t, [...pods, ...others, host]);
  await t.step(tmp, `rm -rf ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  t.finish('cni-front teardown');
});

test('with twill serve running, ADD, CHECK and DEL are answered by the server', { skip }, async () => {
  const pod = newPod();
  const id = `front-${process.pid}-1`;
  const add = await call(host, front(), { CNI_COMMAND: 'ADD', ...attach(pod, id) }, conf());
  assert.equal(add.code, 0, add.stdout + add.stderr);
  assert.equal(add.stderr, '');
  const result = JSON.parse(add.stdout) as { cniVersion: string; ips: Array<{ address: string; gateway: string }>; interfaces: Array<{ name: string; sandbox?: string }> };
  assert.equal(result.cniVersion, '1.1.0');
  assert.match(result.ips[0]!.address, /^10\.244\.9\.\d+\/24$/);
  assert.equal(result.ips[0]!.gateway, '10.244.9.1');
  // What the kernel holds, read independently.
  const [eth0] = ipJson(pod.name, 'addr', 'show', 'dev', 'eth0');
  const inet = (eth0?.['addr_info'] as Array<Record<string, unknown>>).find((a) => a['family'] === 'inet');
  assert.equal(`${inet?.['local']}/${inet?.['prefixlen']}`, result.ips[0]!.address);
  assert.ok(hostHasLink(hostVethName(id, 'eth0')));

  const check = await call(host, front(), { CNI_COMMAND: 'CHECK', ...attach(pod, id) }, JSON.stringify({ ...JSON.parse(conf()), prevResult: result }));
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const del = await call(host, front(), { CNI_COMMAND: 'DEL', ...attach(pod, id) }, conf());
  assert.equal(del.code, 0, del.stdout + del.stderr);
  assert.equal(del.stdout, '');
  assert.ok(!hostHasLink(hostVethName(id, 'eth0')));
  assert.deepEqual(allocations(), []);

  // The server logs a call after it answered: wait for the line rather than read once.
  await eventually(
    () => served(id).map((l) => [l['command'], l['exitCode']]),
    [
      ['ADD', 0],
      ['CHECK', 0],
      ['DEL', 0],
    ],
    5_000,
    'all three calls went through the server',
  );
});

test("the server's answers are the Node plugin's, errors included", { skip }, async () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['garbage stdin', { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'junk-1', CNI_IFNAME: 'eth0', CNI_NETNS: '/run/netns/none' }, '{"cniVersion": 1.0.0,,'],
    ['bad CNI_IFNAME', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'junk-2', CNI_IFNAME: 'a/b' }, conf()],
    ['unknown command', { CNI_COMMAND: 'FROB', CNI_CONTAINERID: 'junk-3' }, conf()],
    ['VERSION', { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.3.1"}'],
    ['STATUS without a subnet file', { CNI_COMMAND: 'STATUS' }, JSON.stringify({ ...JSON.parse(conf()), subnetFile: path.join(tmp, 'missing.env') })],
  ];
  for (const [what, env, stdin] of cases) {
    const viaServer = await call(host, front(), env, stdin);
    const direct = await call(host, nodePlugin(), env, stdin);
    assert.equal(viaServer.code, direct.code, what);
    assert.equal(viaServer.stdout, direct.stdout, what);
    assert.equal(viaServer.stderr, '', what);
  }
  await eventually(() => served('junk-2')[0]?.['exitCode'], 1, 5_000, 'the failing DEL was answered by the server');
});

test('20 parallel ADDs through the server get 20 distinct addresses; DELs free them all', { skip }, async () => {
  const fds = (): number => fs.readdirSync(`/proc/${server!.proc.pid}/fd`).length;
  const fdsBefore = fds(); // the server has answered calls already: warm
  const ids = Array.from({ length: 20 }, (_, i) => `front-${process.pid}-par${i}`);
  const ns = ids.map(() => newPod());
  const adds = await Promise.all(ids.map((id, i) => call(host, front(), { CNI_COMMAND: 'ADD', ...attach(ns[i]!, id) }, conf())));
  for (const a of adds) assert.equal(a.code, 0, a.stdout + a.stderr);
  const addrs = adds.map((a) => (JSON.parse(a.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address);
  assert.equal(new Set(addrs).size, 20);
  assert.equal(allocations().length, 20);
  const dels = await Promise.all(ids.map((id, i) => call(host, front(), { CNI_COMMAND: 'DEL', ...attach(ns[i]!, id) }, conf())));
  for (const d of dels) assert.equal(d.code, 0, d.stdout + d.stderr);
  assert.deepEqual(allocations(), []);
  await eventually(() => ids.filter((id) => served(id).length === 2).length, 20, 5_000, 'every call answered by the server');
  // The front-end exits once it has the answer; the server closes its end of that connection a
  // moment later (measured: the 21st descriptor is the last DEL's socket, gone within ~2 ms).
  // A leak never settles back; a closing connection does.
  await eventually(fds, fdsBefore, 5_000, 'the server leaks no descriptors (netlink sockets, netns fds, connections)');
});

test('a non-root caller is refused by the server and answered by the Node plugin', { skip }, async () => {
  const r = await call(host, front(), { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}', NOBODY);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal((JSON.parse(r.stdout) as { cniVersion: string }).cniVersion, '1.0.0');
  await waitFor(() => server!.log().includes('refused a CNI call from a non-root peer'), 5_000, 'the refusal logged');
});

test('junk on the socket is dropped without an answer and the server keeps serving', { skip }, async () => {
  const script = `const s=require('net').connect('\\0twill-cni',()=>s.end(Buffer.from('GARBAGE-GARBAGE-GARBAGE')));let n=0;s.on('data',d=>n+=d.length);s.on('close',()=>process.stdout.write(String(n)));`;
  const junk = inNetns(host.path, () => spawn(process.execPath, ['-e', script], { env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'inherit'] }));
  let out = '';
  junk.stdout!.on('data', (d: Buffer) => (out += d));
  await new Promise((r) => junk.on('close', r));
  assert.equal(out, '0', 'no answer bytes');
  await waitFor(() => server!.log().includes('dropped a malformed CNI request'), 5_000, 'the drop logged');
  const v = await call(host, front(), { CNI_COMMAND: 'VERSION' }, '{}');
  assert.equal(v.code, 0);
  assert.equal(server!.proc.exitCode, null, 'still running');
});

test('a non-root process squatting @twill-cni is never believed', { skip }, async () => {
  const ns = Netns.create('cnfs');
  others.push(ns);
  // Answers every call with success and a forged result.
  const forged = `require('net').createServer(c=>{const b=Buffer.from('{"forged":true}\\n');const h=Buffer.alloc(12);h.write('TWR1');h.writeUInt32BE(0,4);h.writeUInt32BE(b.length,8);c.end(Buffer.concat([h,b]))}).listen('\\0twill-cni',()=>process.stderr.write('up\\n'));`;
  let up = '';
  const squatter = inNetns(ns.path, () => spawn(process.execPath, ['-e', forged], { uid: NOBODY, gid: NOBODY, env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'ignore', 'pipe'] }));
  squatter.stderr!.on('data', (d: Buffer) => (up += d));
  try {
    await waitFor(() => up.includes('up'), 10_000, 'squatter listening', 20);
    const r = await call(ns, front(), { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /forged/);
    assert.ok((JSON.parse(r.stdout) as { supportedVersions: string[] }).supportedVersions.includes('1.1.0'));
    assert.match(r.stderr, /not root/);
  } finally {
    squatter.kill('SIGKILL');
  }
});

test('with the server stopped, the front-end runs the Node plugin: pods still come and go', { skip }, async () => {
  assert.equal(await stopServer(), 0, 'twill serve exits 0 on SIGTERM');
  const pod = newPod();
  const id = `front-${process.pid}-noserver`;
  const add = await call(host, front(), { CNI_COMMAND: 'ADD', ...attach(pod, id) }, conf());
  assert.equal(add.code, 0, add.stdout + add.stderr);
  assert.match((JSON.parse(add.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address, /^10\.244\.9\.\d+\/24$/);
  assert.ok(hostHasLink(hostVethName(id, 'eth0')));
  const del = await call(host, front(), { CNI_COMMAND: 'DEL', ...attach(pod, id) }, conf());
  assert.equal(del.code, 0, del.stdout + del.stderr);
  assert.deepEqual(allocations(), []);
});
