// The warm CNI server answers in the caller's filesystem view (issue 17, item 4). A runtime
// may see another filesystem than `twill-cni serve` (containerd in a private /run; systemd's
// PrivateTmp for the service): the server must answer exactly as the Node plugin, run by the
// front-end in the caller's place, would. Here the server runs in its own mount namespace
// (`unshare -m`, private propagation) with a tmpfs over the caller's directory, so CNI_NETNS
// (a symlink to the pod's namespace), the subnet file and the data dir exist only on the
// caller's side, and the same paths on the server's side hold a different subnet file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Netns, deleteAll, eventually, isRoot, sh, uniqueName, waitFor } from '../support/netns';
import { cniInvoke } from '../support/pods';
import { inNetns } from '../../src/netns/netns';
import { install } from '../../src/install/install';
import { CNI_NODE_PLUGIN_PATH, CNI_PLUGIN_PATH } from '../../src/install/layout';
import { Teardown } from '../../src/lab/teardown';

const skip = !isRoot() ? 'needs root' : false;

let tmp: string;
let root: string;
let callerDir: string;
let host: Netns;
const pods: Netns[] = [];
let server: ChildProcess | undefined;
let log = '';

const conf = (): string => JSON.stringify({ cniVersion: '1.1.0', name: 'viewnet', type: 'twill', subnetFile: path.join(callerDir, 'subnet.env'), dataDir: path.join(callerDir, 'data') });

/** A pod namespace, reached through a path that exists only on the caller's side. */
function newPod(tag: string): { ns: Netns; link: string } {
  const ns = new Netns(uniqueName(tag));
  sh('ip', ['netns', 'add', ns.name]);
  pods.push(ns);
  const link = path.join(callerDir, `${tag}-netns`);
  fs.symlinkSync(ns.path, link);
  return { ns, link };
}

function served(containerId: string): number[] {
  return log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['containerId'] === containerId && l['msg'] === 'CNI call')
    .map((l) => l['exitCode'] as number);
}

function allocations(dir: string): string[] {
  const d = path.join(dir, 'data', 'viewnet');
  return fs.existsSync(d) ? fs.readdirSync(d).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort() : [];
}

before(async () => {
  if (skip) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-cni-view-'));
  root = path.join(tmp, 'root');
  callerDir = path.join(tmp, 'caller');
  fs.mkdirSync(callerDir);
  await install({ root });
  fs.writeFileSync(path.join(callerDir, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.9.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  host = Netns.create('cnvh');
  const cmd = `mount -t tmpfs tmpfs '${callerDir}' && exec '${path.join(root, CNI_NODE_PLUGIN_PATH)}' serve`;
  server = inNetns(host.path, () => spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', cmd], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['ignore', 'ignore', 'pipe'] }));
  server.stderr!.on('data', (d: Buffer) => (log += d));
  await waitFor(() => log.includes('"msg":"serving CNI calls"'), 15_000, 'twill serve listening', 20);
  // The server's side of the same paths: another subnet, no namespace links.
  const serverSide = `/proc/${server.pid}/root${callerDir}`;
  assert.deepEqual(fs.readdirSync(serverSide), [], "the server's view of the caller's directory is its own tmpfs");
  fs.writeFileSync(path.join(serverSide, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.77.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
});

after(async () => {
  if (skip) return;
  const t = new Teardown();
  const s = server;
  if (s && s.exitCode === null) await t.step('twill serve', `kill -9 ${s.pid}`, () => new Promise((r) => (s.on('exit', r), s.kill('SIGTERM'))));
  await deleteAll(t, [...pods, host]);
  await t.step(tmp, `rm -rf ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  t.finish('cni-server-view teardown');
});

test("ADD, CHECK and DEL through the server in another mount namespace resolve every path on the caller's side", { skip }, async () => {
  const a = newPod('cnva');
  const b = newPod('cnvb');
  const env = (p: { link: string }, id: string, cmd: string): Record<string, string> => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_IFNAME: 'eth0', CNI_NETNS: p.link, CNI_PATH: '/usr/lib/cni' });
  const front = path.join(root, CNI_PLUGIN_PATH);
  const viaServer = await cniInvoke(host.name, env(a, 'view-a', 'ADD'), conf(), 30_000, front);
  const direct = await cniInvoke(host.name, env(b, 'view-b', 'ADD'), conf(), 30_000, path.join(root, CNI_NODE_PLUGIN_PATH));
  assert.equal(viaServer.code, 0, viaServer.stdout + viaServer.stderr);
  assert.equal(direct.code, 0, direct.stdout + direct.stderr);
  await eventually(() => served('view-a'), [0], 5_000, 'the ADD was answered by the server, not by the fallback');

  type Result = { ips: Array<{ address: string; gateway: string }>; interfaces: Array<{ name: string; mac: string; sandbox?: string }> };
  const rs = viaServer.json as Result;
  const rd = direct.json as Result;
  // The caller's subnet file (10.244.9.0/24), not the server's (10.244.77.0/24).
  assert.match(rs.ips[0]!.address, /^10\.244\.9\.\d+\/24$/);
  assert.equal(rs.ips[0]!.gateway, '10.244.9.1');
  // The same answer as the Node plugin's, up to what differs per pod (address, MACs, names).
  const shape = (r: Result, link: string): unknown => JSON.parse(JSON.stringify(r).split(link).join('<netns>').replace(/10\.244\.9\.\d+\/24/g, '<addr>').replace(/"mac":"[0-9a-f:]+"/g, '"mac":"<mac>"').replace(/"tw[0-9a-f]{11}"/g, '"<veth>"'));
  assert.deepEqual(shape(rs, a.link), shape(rd, b.link));
  assert.equal(rs.interfaces.find((i) => i.sandbox)?.sandbox, a.link, 'the sandbox is the path the runtime gave');
  // Allocations landed in the caller's data dir; nothing was written on the server's side.
  assert.equal(allocations(callerDir).length, 2);
  assert.deepEqual(fs.readdirSync(`/proc/${server!.pid}/root${callerDir}`), ['subnet.env']);
  const [inet] = (JSON.parse(sh('ip', ['-n', a.ns.name, '-j', 'addr', 'show', 'dev', 'eth0'])) as Array<{ addr_info: Array<{ family: string; local: string; prefixlen: number }> }>)[0]!.addr_info.filter((x) => x.family === 'inet');
  assert.equal(`${inet!.local}/${inet!.prefixlen}`, rs.ips[0]!.address, "the kernel holds the address in the caller's namespace");

  const check = await cniInvoke(host.name, env(a, 'view-a', 'CHECK'), JSON.stringify({ ...JSON.parse(conf()), prevResult: rs }), 30_000, front);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  for (const [p, id] of [[a, 'view-a'], [b, 'view-b']] as const) {
    const del = await cniInvoke(host.name, env(p, id, 'DEL'), conf(), 30_000, front);
    assert.equal(del.code, 0, del.stdout + del.stderr);
  }
  await eventually(() => served('view-a'), [0, 0, 0], 5_000, 'CHECK and DEL were answered by the server');
  assert.deepEqual(allocations(callerDir), []);
});

test("errors are the Node plugin's too: a namespace missing on the caller's side, present on the server's", { skip }, async () => {
  const front = path.join(root, CNI_PLUGIN_PATH);
  // Exists in the server's view only (its tmpfs), not in the caller's.
  const onlyThere = path.join(callerDir, 'server-only');
  fs.writeFileSync(`/proc/${server!.pid}/root${onlyThere}`, '');
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'view-missing', CNI_IFNAME: 'eth0', CNI_NETNS: onlyThere, CNI_PATH: '/usr/lib/cni' };
  const viaServer = await cniInvoke(host.name, env, conf(), 30_000, front);
  const direct = await cniInvoke(host.name, env, conf(), 30_000, path.join(root, CNI_NODE_PLUGIN_PATH));
  assert.notEqual(direct.code, 0);
  assert.equal(viaServer.code, direct.code);
  assert.equal(viaServer.stdout, direct.stdout);
  assert.match(viaServer.stdout, /does not exist/);
  await eventually(() => served('view-missing').length, 0, 0, 'a failed call is logged as "CNI call failed", not as a success');
  assert.ok(log.includes('"containerId":"view-missing"'), 'answered by the server');
  assert.deepEqual(allocations(callerDir), []);
});

test('a caller in another PID namespace (its view cannot be taken) is declined, and the front-end answers through the Node plugin', { skip }, async () => {
  const front = path.join(root, CNI_PLUGIN_PATH);
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: 'VERSION' };
  const p = inNetns(host.path, () => spawn('unshare', ['--pid', '--fork', front], { env, stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d));
  const code = await new Promise<number | null>((r) => {
    p.on('close', r);
    p.stdin!.end('{"cniVersion":"1.0.0"}');
  });
  assert.equal(code, 0);
  assert.equal((JSON.parse(out) as { cniVersion: string }).cniVersion, '1.0.0');
  await waitFor(() => log.includes('"msg":"declined a CNI call: the caller\'s filesystem view is out of reach"'), 5_000, 'the decline logged');
});
