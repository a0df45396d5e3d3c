// The `twill` CNI plugin executable against real namespaces, run exactly as a runtime runs it:
// `ip netns exec <host> node dist/src/cmd/twill.js` with CNI_* variables and the config on
// stdin. A throwaway "host" namespace holds the bridge; pods are throwaway namespaces.
// `ip -j` is the independent oracle. Set TWILL_CNI_BIN to test the bundle instead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Netns, ipJson, deleteAll, isRoot, sh, uniqueName, waitFor } from '../support/netns';
import { Teardown } from '../../src/lab/teardown';
import { hostVethName } from '../../src/cni/names';

const skip = !isRoot() ? 'needs root' : false;
const BIN = process.env['TWILL_CNI_BIN'] ?? path.resolve(__dirname, '../../src/cmd/twill.js');

let host: Netns;
let tmp: string;
let subnetFile: string;
const pods: Netns[] = [];

interface Call {
  code: number | null;
  stdout: string;
  stderr: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function cni(command: string, env: Record<string, string>, conf: Record<string, unknown>): Promise<Call> {
  return new Promise((resolve, reject) => {
    // A runtime passes only the CNI variables (and PATH); NODE_EXTRA_CA_CERTS would cost 80 ms.
    const p = spawn('ip', ['netns', 'exec', host.name, process.execPath, BIN], {
      // TWILL_CNI_CODE_CACHE only matters to the bundle: keep its V8 cache in our temp dir.
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: command, CNI_PATH: '/usr/lib/cni', TWILL_CNI_CODE_CACHE: path.join(tmp, 'code-cache'), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => {
      let json: unknown;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
    p.stdin.end(JSON.stringify(conf));
  });
}

function netConf(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: '1.1.0', name: 'podnet', type: 'twill', subnetFile, dataDir: path.join(tmp, 'data'), ...extra };
}

/** A pod namespace as a runtime creates it: empty, loopback down. */
function newPod(): Netns {
  const ns = new Netns(uniqueName('cnip'));
  sh('ip', ['netns', 'add', ns.name]);
  pods.push(ns);
  return ns;
}

function attachEnv(pod: Netns, id: string, ifname = 'eth0'): Record<string, string> {
  return { CNI_CONTAINERID: id, CNI_IFNAME: ifname, CNI_NETNS: pod.path };
}

async function add(pod: Netns, id: string, conf = netConf(), ifname = 'eth0'): Promise<any> {
  const r = await cni('ADD', attachEnv(pod, id, ifname), conf);
  assert.equal(r.code, 0, `ADD ${id} failed: ${r.stdout} ${r.stderr}`);
  assert.equal(r.stderr, '');
  return r.json;
}

function allocations(network = 'podnet'): string[] {
  const dir = path.join(tmp, 'data', network);
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort() : [];
}

function hostLinks(): Array<Record<string, any>> {
  return ipJson(host.name, '-d', 'link', 'show');
}

function vethsOnHost(): string[] {
  return hostLinks().map((l) => l['ifname'] as string).filter((n) => /^tw[0-9a-f]{11}$/.test(n));
}

function podAddr(pod: Netns, ifname = 'eth0'): string | undefined {
  const [link] = ipJson<Record<string, any>>(pod.name, 'addr', 'show', 'dev', ifname);
  const a = (link?.['addr_info'] as Array<Record<string, any>> | undefined)?.find((x) => x['family'] === 'inet');
  return a ? `${a['local']}/${a['prefixlen']}` : undefined;
}

function canPing(from: Netns, ip: string): boolean {
  try {
    from.exec('ping', '-c', '1', '-W', '2', ip);
    return true;
  } catch {
    return false;
  }
}

function writeSubnet(file: string, subnet: string, mtu = 1450): void {
  fs.writeFileSync(file, `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${subnet}\nFLANNEL_MTU=${mtu}\nFLANNEL_IPMASQ=false\n`);
}

before(() => {
  if (skip) return;
  host = Netns.create('cnih');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-cni-netns-'));
  subnetFile = path.join(tmp, 'subnet.env');
  writeSubnet(subnetFile, '10.244.7.1/24');
});

after(async () => {
  if (skip) return;
  const t = new Teardown();
  await deleteAll(t, [...pods, host]);
  if (tmp) await t.step(tmp, `rm -rf ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  t.finish('cni-plugin teardown');
});

test('ADD wires a pod: bridge, veth, address, lo, default route, forwarding; spec result', { skip }, async () => {
  const pod = newPod();
  const res = await add(pod, 'ctr-basic', netConf({ dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] } }));
  const hostName = hostVethName('ctr-basic', 'eth0');
  assert.equal(res.cniVersion, '1.1.0');
  assert.deepEqual(res.interfaces.map((i: any) => [i.name, i.sandbox, i.mtu]), [[hostName, undefined, 1450], ['eth0', pod.path, 1450]]);
  assert.equal(res.ips.length, 1);
  assert.equal(res.ips[0].interface, 1);
  assert.equal(res.ips[0].gateway, '10.244.7.1');
  assert.equal(res.ips[0].version, undefined);
  assert.match(res.ips[0].address, /^10\.244\.7\.\d+\/24$/);
  assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0', gw: '10.244.7.1' }]);
  assert.deepEqual(res.dns, { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] });

  // Host side, by the oracle.
  const links = hostLinks();
  const br = links.find((l) => l['ifname'] === 'twill0')!;
  assert.equal(br['linkinfo']['info_kind'], 'bridge');
  assert.equal(br['mtu'], 1450);
  assert.ok((br['flags'] as string[]).includes('UP'));
  const brAddrs = ipJson<Record<string, any>>(host.name, 'addr', 'show', 'dev', 'twill0')[0]!['addr_info'] as Array<Record<string, any>>;
  assert.ok(brAddrs.some((a) => a['local'] === '10.244.7.1' && a['prefixlen'] === 24));
  const veth = links.find((l) => l['ifname'] === hostName)!;
  assert.equal(veth['linkinfo']['info_kind'], 'veth');
  assert.equal(veth['master'], 'twill0');
  assert.equal(veth['mtu'], 1450);
  assert.equal(veth['operstate'], 'UP');
  assert.equal(veth['address'], res.interfaces[0].mac);
  assert.equal(host.exec('cat', '/proc/sys/net/ipv4/ip_forward').trim(), '1');

  // Pod side.
  const [eth0] = ipJson<Record<string, any>>(pod.name, '-d', 'link', 'show', 'dev', 'eth0');
  assert.equal(eth0!['linkinfo']['info_kind'], 'veth');
  assert.equal(eth0!['mtu'], 1450);
  assert.equal(eth0!['operstate'], 'UP');
  assert.equal(eth0!['address'], res.interfaces[1].mac);
  assert.equal(podAddr(pod), res.ips[0].address);
  const [lo] = ipJson<Record<string, any>>(pod.name, 'link', 'show', 'dev', 'lo');
  assert.ok((lo!['flags'] as string[]).includes('UP'));
  const routes = ipJson<Record<string, any>>(pod.name, 'route', 'show');
  assert.ok(routes.some((r) => r['dst'] === 'default' && r['gateway'] === '10.244.7.1' && r['dev'] === 'eth0'));
  assert.ok(canPing(pod, '10.244.7.1'), 'pod reaches its gateway');

  // IPAM: one reservation naming the attachment.
  const ip = res.ips[0].address.split('/')[0];
  assert.ok(allocations().includes(ip));
  assert.equal(fs.readFileSync(path.join(tmp, 'data', 'podnet', ip), 'utf8'), 'ctr-basic\r\neth0');

  // CHECK against the result passes.
  const chk = await cni('CHECK', attachEnv(pod, 'ctr-basic'), netConf({ prevResult: res }));
  assert.equal(chk.code, 0, chk.stdout);
  assert.equal(chk.stdout, '');

  const del = await cni('DEL', attachEnv(pod, 'ctr-basic'), netConf({ prevResult: res }));
  assert.equal(del.code, 0, del.stdout);
});

test('CHECK reports each kind of drift with error 105', { skip }, async () => {
  const pod = newPod();
  const res = await add(pod, 'ctr-check');
  const env = attachEnv(pod, 'ctr-check');
  const check = async (prev: unknown, why: RegExp) => {
    const r = await cni('CHECK', env, netConf({ prevResult: prev }));
    assert.equal(r.code, 1, `CHECK should fail (${why})`);
    assert.equal(r.json.code, 105, r.stdout);
    assert.match(r.json.msg, why);
  };
  const wrongMac = structuredClone(res);
  wrongMac.interfaces[1].mac = '0a:58:00:00:00:01';
  await check(wrongMac, /MAC/);
  const wrongIp = structuredClone(res);
  wrongIp.ips[0].address = '10.244.7.250/24';
  await check(wrongIp, /lacks address/);
  const extraRoute = structuredClone(res);
  extraRoute.routes.push({ dst: '10.96.0.0/12', gw: '10.244.7.1' });
  await check(extraRoute, /route 10\.96\.0\.0\/12/);

  pod.ip('route', 'del', 'default');
  await check(res, /route 0\.0\.0\.0\/0/);
  pod.ip('route', 'add', 'default', 'via', '10.244.7.1', 'dev', 'eth0');
  pod.ip('link', 'set', 'eth0', 'down');
  await check(res, /is down/);
  pod.ip('link', 'set', 'eth0', 'up');
  pod.ip('route', 'add', 'default', 'via', '10.244.7.1', 'dev', 'eth0');
  host.ip('link', 'set', hostVethName('ctr-check', 'eth0'), 'nomaster');
  await check(res, /not attached/);
  host.ip('link', 'set', hostVethName('ctr-check', 'eth0'), 'master', 'twill0');
  const ok = await cni('CHECK', env, netConf({ prevResult: res }));
  assert.equal(ok.code, 0, ok.stdout);
  fs.unlinkSync(path.join(tmp, 'data', 'podnet', res.ips[0].address.split('/')[0]));
  await check(res, /not reserved/);
  await cni('DEL', env, netConf());
});

test('ADD over an existing interface is an error and leaves nothing behind', { skip }, async () => {
  const pod = newPod();
  await add(pod, 'ctr-exists');
  const before = allocations();
  const links = vethsOnHost();
  // The same attachment again, and another container ID into the same pod and ifname.
  for (const id of ['ctr-exists', 'ctr-exists-2']) {
    const r = await cni('ADD', attachEnv(pod, id), netConf());
    assert.equal(r.code, 1);
    assert.ok(r.json.code === 101 || r.json.code === 107, r.stdout);
    assert.equal(r.stderr, '');
    assert.deepEqual(allocations(), before, 'the failed ADD released its address');
    assert.deepEqual(vethsOnHost().sort(), links.sort(), 'and created no veth');
  }
  const r = await cni('ADD', attachEnv(pod, 'ctr-exists-2'), netConf());
  assert.equal(r.json.code, 101);
  assert.match(r.json.msg, /eth0 already exists in the container/);
  await cni('DEL', attachEnv(pod, 'ctr-exists'), netConf());
});

test('DEL is idempotent: twice, without prevResult, without CNI_NETNS', { skip }, async () => {
  const pod = newPod();
  const res = await add(pod, 'ctr-del');
  const ip = res.ips[0].address.split('/')[0];
  for (let i = 0; i < 2; i++) {
    const r = await cni('DEL', attachEnv(pod, 'ctr-del'), netConf({ prevResult: res }));
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.stdout, '');
  }
  const r = await cni('DEL', { CNI_CONTAINERID: 'ctr-del', CNI_IFNAME: 'eth0' }, netConf());
  assert.equal(r.code, 0, r.stdout);
  assert.ok(!allocations().includes(ip));
  assert.ok(!vethsOnHost().includes(hostVethName('ctr-del', 'eth0')));
  assert.deepEqual(ipJson(pod.name, 'link', 'show', 'dev', 'lo').length, 1);
  assert.equal(ipJson(pod.name, 'link', 'show').some((l) => l['ifname'] === 'eth0'), false);
});

test('DEL after the pod namespace is gone releases the address', { skip }, async () => {
  const pod = newPod();
  const res = await add(pod, 'ctr-gone');
  const ip = res.ips[0].address.split('/')[0];
  pod.delete();
  const r = await cni('DEL', attachEnv(pod, 'ctr-gone'), netConf({ prevResult: res }));
  assert.equal(r.code, 0, r.stdout);
  assert.ok(!allocations().includes(ip));
  await waitFor(() => !vethsOnHost().includes(hostVethName('ctr-gone', 'eth0')), 5000, 'host veth to go');
});

test('results follow the requested cniVersion (ips[].version only before 1.0.0)', { skip }, async () => {
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0']) {
    const pod = newPod();
    const id = `ctr-v${v.replace(/\./g, '')}`;
    const res = await add(pod, id, netConf({ cniVersion: v }));
    assert.equal(res.cniVersion, v);
    assert.equal(res.ips[0].version, v === '1.0.0' ? undefined : '4');
    assert.equal(res.interfaces[1].mtu, undefined);
    assert.equal(res.interfaces[1].sandbox, pod.path);
    const del = await cni('DEL', attachEnv(pod, id), netConf({ cniVersion: v }));
    assert.equal(del.code, 0);
  }
});

test('30 parallel ADDs get distinct addresses and working pods; parallel DELs clean up', { skip, timeout: 300_000 }, async () => {
  const n = 30;
  const ps = Array.from({ length: n }, () => newPod());
  const results = await Promise.all(ps.map((p, i) => cni('ADD', attachEnv(p, `ctr-par-${i}`), netConf())));
  results.forEach((r, i) => assert.equal(r.code, 0, `ADD ${i}: ${r.stdout} ${r.stderr}`));
  const ips = results.map((r) => r.json.ips[0].address as string);
  assert.equal(new Set(ips).size, n, `duplicate addresses: ${ips.join(' ')}`);
  ps.forEach((p, i) => assert.equal(podAddr(p), ips[i]));
  assert.equal(allocations().length, n);
  const veths = vethsOnHost();
  assert.equal(veths.length, n);
  // Pod to pod across the bridge, both ways.
  const ipOf = (i: number) => ips[i]!.split('/')[0]!;
  assert.ok(canPing(ps[0]!, ipOf(n - 1)), 'pod 0 reaches the last pod');
  assert.ok(canPing(ps[n - 1]!, ipOf(1)), 'the last pod reaches pod 1');

  const dels = await Promise.all(ps.map((p, i) => cni('DEL', attachEnv(p, `ctr-par-${i}`), netConf())));
  dels.forEach((r, i) => assert.equal(r.code, 0, `DEL ${i}: ${r.stdout}`));
  assert.deepEqual(allocations(), []);
  assert.deepEqual(vethsOnHost(), []);
});

test('GC releases addresses and removes host veths of attachments that are not valid', { skip }, async () => {
  const ps = [newPod(), newPod(), newPod()];
  const res = await Promise.all(ps.map((p, i) => add(p, `ctr-gc-${i}`)));
  // Leaks GC must catch: a reservation without any pod, and a stray twill-named veth on the bridge.
  fs.writeFileSync(path.join(tmp, 'data', 'podnet', '10.244.7.200'), 'ctr-leaked\r\neth0');
  const stray = hostVethName('ctr-leaked', 'eth0');
  host.ip('link', 'add', stray, 'type', 'veth', 'peer', 'name', 'strayp0');
  host.ip('link', 'set', stray, 'master', 'twill0');
  const valid = [{ containerID: 'ctr-gc-1', ifname: 'eth0' }];
  const r = await cni('GC', {}, netConf({ 'cni.dev/valid-attachments': valid }));
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(allocations(), [res[1].ips[0].address.split('/')[0]]);
  assert.deepEqual(vethsOnHost(), [hostVethName('ctr-gc-1', 'eth0')]);
  assert.ok(canPing(ps[1]!, '10.244.7.1'), 'the valid pod still works');
  // The draft key works too; an empty list releases everything.
  const r2 = await cni('GC', {}, netConf({ 'cni.dev/attachments': [] }));
  assert.equal(r2.code, 0, r2.stdout);
  assert.deepEqual(allocations(), []);
  assert.deepEqual(vethsOnHost(), []);
  const old = await cni('GC', {}, netConf({ cniVersion: '1.0.0', 'cni.dev/valid-attachments': [] }));
  assert.equal(old.json.code, 1);
});

test('STATUS follows the subnet file; ADD says try again later until it exists', { skip }, async () => {
  const file = path.join(tmp, 'late.env');
  const conf = netConf({ subnetFile: file, name: 'latenet' });
  const st = await cni('STATUS', {}, conf);
  assert.equal(st.code, 1);
  assert.equal(st.json.code, 50);
  const pod = newPod();
  const r = await cni('ADD', attachEnv(pod, 'ctr-late'), conf);
  assert.equal(r.json.code, 11);
  assert.deepEqual(allocations('latenet'), []);
  assert.equal(ipJson(pod.name, 'link', 'show').length, 1);
  writeSubnet(file, '10.244.7.1/24');
  const st2 = await cni('STATUS', {}, conf);
  assert.equal(st2.code, 0, st2.stdout);
  await add(pod, 'ctr-late', conf);
  await cni('DEL', attachEnv(pod, 'ctr-late'), conf);
});

test('a failure after allocation rolls back: bridge name taken by a non-bridge', { skip }, async () => {
  host.ip('link', 'add', 'notbr0', 'type', 'veth', 'peer', 'name', 'notbr1');
  const pod = newPod();
  const conf = netConf({ bridge: 'notbr0', name: 'rbnet' });
  const r = await cni('ADD', attachEnv(pod, 'ctr-rb'), conf);
  assert.equal(r.code, 1);
  assert.equal(r.json.code, 108, r.stdout);
  assert.deepEqual(allocations('rbnet'), []);
  assert.ok(!vethsOnHost().includes(hostVethName('ctr-rb', 'eth0')));
  assert.equal(ipJson(pod.name, 'link', 'show').length, 1);
  host.ip('link', 'del', 'notbr0');
});

test('exhaustion is a clear error (103) and leaves nothing behind', { skip }, async () => {
  const file = path.join(tmp, 'small.env');
  writeSubnet(file, '10.244.8.1/29'); // 5 usable addresses
  const conf = netConf({ subnetFile: file, bridge: 'twsmall0', name: 'smallnet' });
  const ps = Array.from({ length: 6 }, () => newPod());
  const rs = await Promise.all(ps.map((p, i) => cni('ADD', attachEnv(p, `ctr-small-${i}`), conf)));
  const ok = rs.filter((r) => r.code === 0);
  const failed = rs.filter((r) => r.code !== 0);
  assert.equal(ok.length, 5);
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.json.code, 103, failed[0]!.stdout);
  assert.match(failed[0]!.json.msg, /no free address/);
  assert.equal(allocations('smallnet').length, 5);
  const st = await cni('STATUS', {}, conf);
  assert.equal(st.json.code, 50);
  await Promise.all(ps.map((p, i) => cni('DEL', attachEnv(p, `ctr-small-${i}`), conf)));
  assert.deepEqual(allocations('smallnet'), []);
  host.ip('link', 'del', 'twsmall0');
});

test('hairpinMode and an MTU override are applied', { skip }, async () => {
  const pod = newPod();
  const conf = netConf({ hairpinMode: true, mtu: 1400, bridge: 'twhp0', name: 'hpnet' });
  const res = await add(pod, 'ctr-hp', conf);
  const hostName = hostVethName('ctr-hp', 'eth0');
  const [veth] = ipJson<Record<string, any>>(host.name, '-d', 'link', 'show', 'dev', hostName);
  assert.equal(veth!['linkinfo']['info_slave_data']['hairpin'], true);
  assert.equal(veth!['mtu'], 1400);
  const [eth0] = ipJson<Record<string, any>>(pod.name, 'link', 'show', 'dev', 'eth0');
  assert.equal(eth0!['mtu'], 1400);
  assert.equal(res.interfaces[1].mtu, 1400);
  await cni('DEL', attachEnv(pod, 'ctr-hp'), conf);
  host.ip('link', 'del', 'twhp0');
});

test('bad CNI_NETNS on ADD is error 3 and allocates nothing', { skip }, async () => {
  const conf = netConf({ name: 'nsnet' });
  const r = await cni('ADD', { CNI_CONTAINERID: 'ctr-nons', CNI_IFNAME: 'eth0', CNI_NETNS: '/run/netns/twill-no-such-ns' }, conf);
  assert.equal(r.json.code, 3);
  const r2 = await cni('ADD', { CNI_CONTAINERID: 'ctr-nons', CNI_IFNAME: 'eth0', CNI_NETNS: subnetFile }, conf);
  assert.equal(r2.json.code, 3);
  assert.deepEqual(allocations('nsnet'), []);
});
