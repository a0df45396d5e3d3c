// The lab's pure parts: prerequisite messages, the CNI environment a runtime would give, ADD
// result parsing, and the report a person reads after `twill-lab up`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prereqProblems } from '../../src/lab/prereq';
import { addResultAddress, cniEnv } from '../../src/lab/cni-exec';
import { LabError } from '../../src/lab/errors';
import { renderReport, reportOk, type LabReport } from '../../src/lab/report';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Lab, type LabState } from '../../src/lab/lab';
import { existingSize, labExecEnv } from '../../src/lab/operations';
import { echoReply } from '../../src/lab/outside-probe';

test('prerequisites: one line with a remedy per problem', () => {
  assert.deepEqual(prereqProblems({ uid: 0, etcdPresent: true, nftPresent: true, missingBuild: [], netnsSupported: true }), []);
  assert.deepEqual(prereqProblems({ uid: 0, etcdPresent: true, nftPresent: true, missingBuild: [], netnsSupported: true, wireguard: { goPresent: true, toolsPresent: true } }), []);
  const wg = prereqProblems({ uid: 0, etcdPresent: true, nftPresent: true, missingBuild: [], netnsSupported: true, wireguard: { goPresent: false, toolsPresent: false } });
  assert.deepEqual(wg.map((l) => /apt-get install -y (\S+)/.exec(l)?.[1]), ['wireguard-go', 'wireguard-tools']);
  const p = prereqProblems({ uid: 1000, etcdPresent: false, nftPresent: false, missingBuild: ['dist/src/cmd/twilld.js'], netnsSupported: true });
  assert.equal(p.length, 4);
  assert.match(p[0]!, /root.*sudo/);
  assert.match(p[1]!, /apt-get install -y etcd-server/);
  assert.match(p[2]!, /apt-get install -y nftables/);
  assert.match(p[3]!, /missing dist\/src\/cmd\/twilld\.js.*npm ci && npm run build/);
});

test('the plugin gets only CNI_* and PATH, as under a runtime', () => {
  const env = cniEnv({ plugin: '/x', hostNsPath: '/run/netns/h', command: 'ADD', containerId: 'c1', netnsPath: '/run/netns/p', ifname: 'eth0', cniPath: '/opt/cni/bin', config: {} });
  assert.deepEqual(Object.keys(env).sort(), ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS', 'CNI_PATH', 'PATH']);
  assert.equal(env['CNI_NETNS'], '/run/netns/p');
});

test('ADD results: the first IPv4 address, or an ERR_LAB_CNI naming the CNI error', () => {
  const ok = { exitCode: 0, stdout: JSON.stringify({ cniVersion: '1.0.0', ips: [{ address: 'fd00::2/64' }, { address: '10.244.3.2/24', gateway: '10.244.3.1' }] }), stderr: '' };
  assert.equal(addResultAddress(ok, 'p'), '10.244.3.2/24');
  const isCni = (re: RegExp) => (err: unknown) => err instanceof LabError && err.code === 'ERR_LAB_CNI' && re.test(err.message);
  assert.throws(() => addResultAddress({ exitCode: 1, stdout: '{"code":11,"msg":"subnet file missing","details":"/run/x"}', stderr: '' }, 'p'), isCni(/code 11: subnet file missing \(\/run\/x\)/));
  assert.throws(() => addResultAddress({ exitCode: 0, stdout: 'hello', stderr: '' }, 'p'), isCni(/no JSON/));
  assert.throws(() => addResultAddress({ exitCode: 0, stdout: '{"ips":[]}', stderr: '' }, 'p'), isCni(/no IPv4/));
});

function report(fail: boolean): LabReport {
  const pods = [
    { name: 'h1-p1', host: 'h1', ns: 'twl-x-h1-p1', address: '10.244.1.2/24' },
    { name: 'h2-p1', host: 'h2', ns: 'twl-x-h2-p1', address: '10.244.2.2/24' },
  ];
  const matrix = pods.flatMap((a) => pods.map((b) => ({ from: a.name, to: b.name, ok: !(fail && a.name !== b.name), rttMs: 0.3 })));
  return {
    name: 'x',
    dir: '/run/twill-lab/x',
    etcd: 'http://172.30.0.1:2379',
    underlayNs: 'twl-x-ul',
    hosts: [
      { name: 'h1', ns: 'twl-x-h1', underlayIp: '172.30.0.11', subnet: '10.244.1.0/24', identity: '0e:00:00:00:00:01', daemon: 'ready', pid: 42, peers: 1 },
      { name: 'h2', ns: 'twl-x-h2', underlayIp: '172.30.0.12', subnet: null, identity: null, daemon: 'stopped', pid: null, peers: null },
    ],
    pods,
    matrix,
  };
}

test('report: hosts, pods, a matrix of ok cells and a verdict', () => {
  const r = report(false);
  assert.ok(reportOk(r));
  const text = renderReport(r, 'twill-lab');
  assert.match(text, /^h1\s+172\.30\.0\.11\s+10\.244\.1\.0\/24\s+0e:00:00:00:00:01\s+ready \(pid 42\)\s+1\s+twl-x-h1$/m);
  assert.match(text, /^h2\s+172\.30\.0\.12\s+-\s+-\s+stopped\s+-\s+twl-x-h2$/m);
  assert.match(text, /^FROM \\ TO\s+h1-p1\s+h2-p1$/m);
  assert.match(text, /^h1-p1\s+ok\s+ok$/m);
  assert.match(text, /^all 4 pod pairs reachable/m);
  assert.match(text, /twill-lab exec h1-p1 -- ping -c 3 10\.244\.2\.2/);
});

test('report: failed pairs are FAIL in the matrix and listed', () => {
  const r = report(true);
  assert.ok(!reportOk(r));
  const text = renderReport(r, 'twill-lab');
  assert.match(text, /^h1-p1\s+ok\s+FAIL$/m);
  assert.match(text, /^2 of 4 pod pairs FAILED:\n  h1-p1 -> h2-p1\n  h2-p1 -> h1-p1$/m);
  const noAddr = report(false);
  noAddr.pods[1]!.address = null;
  assert.ok(!reportOk(noAddr), 'a pod without an address is a failure');
});

test('report: the OUTSIDE column shows the source the outside saw; a pod that cannot reach it fails the report', () => {
  const r = report(false);
  r.outside = [
    { from: 'h1-p1', ok: true, seenSource: '172.30.0.11', rttMs: 0.2 },
    { from: 'h2-p1', ok: true, seenSource: '172.30.0.12', rttMs: 0.2 },
  ];
  assert.ok(reportOk(r));
  const text = renderReport(r, 'twill-lab');
  assert.match(text, /^FROM \\ TO\s+h1-p1\s+h2-p1\s+OUTSIDE$/m);
  assert.match(text, /^h1-p1\s+ok\s+ok\s+ok from 172\.30\.0\.11$/m);
  assert.match(text, /every pod reaches the outside/);
  r.outside[1] = { from: 'h2-p1', ok: false, seenSource: null, rttMs: null };
  assert.ok(!reportOk(r));
  const failed = renderReport(r, 'twill-lab');
  assert.match(failed, /^h2-p1\s+ok\s+ok\s+FAIL$/m);
  assert.match(failed, /1 pods cannot reach the outside \(is --ip-masq off\?\): h2-p1/);
});

test('outside echo reply: the token, then the source address seen', () => {
  assert.equal(echoReply(Buffer.from('twill-outside p 0a'), '172.30.0.11'), 'twill-outside p 0a 172.30.0.11');
});

function labAt(state: Partial<LabState>): Lab {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-lab-parts-'));
  const full: LabState = { name: 'x', dir, underlayNs: 'twl-x-ul', mtu: 1500, hosts: [], pods: [], networkConfig: '{}', ...state };
  fs.writeFileSync(path.join(dir, 'lab.json'), JSON.stringify(full));
  const lab = Lab.load(dir)!;
  fs.rmSync(dir, { recursive: true });
  return lab;
}

const host = (n: number) => ({ name: `h${n}`, ns: `twl-x-h${n}`, ip: `172.30.0.${10 + n}`, dir: `/x/h${n}` });
const pod = (h: number, k: number) => ({ name: `h${h}-p${k}`, host: `h${h}`, ns: `twl-x-h${h}-p${k}`, containerId: `c${h}${k}`, ifname: 'eth0' });

test('up without --hosts/--pods keeps an existing lab\'s size', () => {
  assert.equal(existingSize(undefined), undefined);
  assert.equal(existingSize(labAt({})), undefined, 'no hosts yet: the defaults');
  assert.deepEqual(existingSize(labAt({ hosts: [host(1), host(2)], pods: [pod(1, 1), pod(2, 1)] })), { hosts: 2, pods: 1 });
  assert.deepEqual(existingSize(labAt({ hosts: [host(1), host(2)], pods: [pod(1, 1), pod(1, 2), pod(1, 3)] })), { hosts: 2, pods: 3 });
});

test('exec inside the lab: its install comes first on PATH', () => {
  const lab = labAt({ installRoot: '/run/twill-lab/x/root' });
  const env = labExecEnv(lab, { PATH: '/usr/bin:/run/twill-lab/x/root/usr/local/bin:/bin' });
  assert.equal(env['PATH'], '/run/twill-lab/x/root/usr/local/bin:/usr/bin:/bin');
  assert.equal(env['NODE_EXTRA_CA_CERTS'], undefined);
});
