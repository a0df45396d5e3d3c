// Issue 12's end-to-end proof, three lab hosts on the wireguard backend (h3 on segment B
// behind the router), wireguard-go as the datapath (this kernel has no WireGuard module).
// Oracles: `wg show … dump` (through the UAPI socket), `ip -j route`, tcpdump on the underlay.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isRoot, ipJson, ipn, waitFor } from '../support/netns';
import { createTestLab, leases as labLeases, meshFailures as podMeshFailures, metricLine as metric, pingFrom, podIp, setConfigAndRestart } from '../support/lab';
import { captureHolds, countPackets, startCapture, stopCapture } from '../support/capture';
import { ETCD_PREFIX, labNetworkConfig, type Lab, type LabHost, type LabPod } from '../../src/lab/lab';

const skip = !isRoot() ? 'needs root' : false;
let lab: Lab;
let hosts: LabHost[] = [];
const pods: LabPod[] = [];
const MARKER = 'TWILLMARKER!';
const MARKER_HEX = Buffer.from(MARKER).toString('hex');

interface Peer { key: string; endpoint: string; allowed: string }
const dev = (h: LabHost): string => lab.wireguardDevice(h);
function wgPeers(h: LabHost): Peer[] {
  const r = spawnSync('wg', ['show', dev(h), 'dump'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout.trim().split('\n').slice(1).map((l) => l.split('\t')).map((f) => ({ key: f[0]!, endpoint: f[2]!, allowed: f[3]! })).sort((a, b) => a.allowed.localeCompare(b.allowed));
}
const routes = (h: LabHost): string[] =>
  ipJson<{ type?: string; dst: string; dev?: string }>(h.ns, 'route', 'show', 'proto', '113').map((r) => `${r.type ?? 'unicast'} ${r.dst}${r.dev ? ` dev ${r.dev}` : ''}`).sort();

interface WgLease { subnet: string; PublicIP: string; BackendType: string; BackendData: { PublicKey: string; Port: number } }
const leases = () => labLeases<WgLease>(lab);
let byIp = new Map<string, WgLease>();
const expectedPeers = (h: LabHost): Peer[] =>
  hosts.filter((x) => x !== h).map((x) => byIp.get(x.ip)!).map((l) => ({ key: l.BackendData.PublicKey, endpoint: `${l.PublicIP}:51820`, allowed: l.subnet })).sort((a, b) => a.allowed.localeCompare(b.allowed));
const expectedRoutes = (h: LabHost): string[] =>
  ['unreachable 10.244.0.0/16', ...hosts.filter((x) => x !== h).map((x) => `unicast ${byIp.get(x.ip)!.subnet} dev ${dev(h)}`)].sort();
const converged = (h: LabHost): boolean => JSON.stringify(wgPeers(h)) === JSON.stringify(expectedPeers(h)) && JSON.stringify(routes(h)) === JSON.stringify(expectedRoutes(h));

const meshFailures = (): string[] => podMeshFailures(pods, 2);
/** A marker-filled ping from pod a to pod b; whether it was answered. */
const markerPing = (a: LabPod, b: LabPod, count = 3): boolean =>
  spawnSync('ip', ['netns', 'exec', a.ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', '-p', MARKER_HEX, '-s', '200', podIp(b)]).status === 0;

before(async () => {
  if (skip) return;
  lab = await createTestLab({ networkConfig: labNetworkConfig('wireguard') });
  hosts = [lab.addHost('h1'), lab.addHost('h2'), lab.addHost('h3', 'b')];
  for (const h of hosts) lab.startDaemon(h);
  for (const h of hosts) await lab.waitReady(h, 30_000);
  byIp = await leases();
  for (const h of hosts) pods.push(await lab.addPod(h));
});

after(async () => {
  if (lab) await lab.down();
});

test('leases carry each host\'s public key and port; device, peers and routes converge; every pod reaches every pod', { skip }, async () => {
  assert.deepEqual([...byIp.values()].map((l) => [l.BackendType, Object.keys(l.BackendData).join(','), Buffer.from(l.BackendData.PublicKey, 'base64').length]), hosts.map(() => ['wireguard', 'PublicKey,Port', 32]));
  for (const h of hosts) await waitFor(() => converged(h), 10_000, `${h.name} converged`, 50);
  for (const h of hosts) {
    const link = ipJson<{ mtu: number; operstate: string; addr_info: Array<{ local: string; prefixlen: number }> }>(h.ns, 'addr', 'show', 'dev', dev(h))[0]!;
    assert.equal(link.mtu, 1440);
    assert.deepEqual(link.addr_info.filter((a) => !a.local.includes(':')).map((a) => `${a.local}/${a.prefixlen}`), [`${byIp.get(h.ip)!.subnet.split('/')[0]}/32`]);
    assert.match(fs.readFileSync(lab.subnetFile(h), 'utf8'), /FLANNEL_MTU=1440/);
    // The private key stays in the state dir, 0600, and never reaches the log.
    const keyFile = path.join(lab.stateDir(h), 'wireguard-private-key');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(lab.daemonLog(h), 'utf8').includes(fs.readFileSync(keyFile, 'utf8').trim()));
  }
  // The driver choice is logged: this kernel has no WireGuard, so wireguard-go.
  const noModule = !fs.existsSync('/sys/module/wireguard');
  const choice = fs.readFileSync(lab.daemonLog(hosts[0]!), 'utf8').split('\n').find((l) => l.includes('"msg":"dataplane starting'));
  assert.match(choice ?? '', noModule ? /"dataplane":"userspace".*the kernel has no WireGuard \(ENOENT\)/ : /"dataplane":"kernel"/);
  // A first handshake that crossed its peer's is retried by WireGuard only after 5 s
  // (REKEY_TIMEOUT): pods on hosts that came up together may need that retry before the mesh
  // is whole (seen once in a full run). Bounded wait, then the pairs still failing.
  let failed: string[] = [];
  await waitFor(() => (failed = meshFailures()).length === 0, 20_000, 'every pod reaches every pod', 200).catch(() => undefined);
  assert.deepEqual(failed, []);
});

test('on the underlay: WireGuard UDP only, never the marker nor a pod address', { skip }, async () => {
  const [p1, p2, p3] = pods as [LabPod, LabPod, LabPod];
  const file = path.join(lab.dir, 'clear.pcap');
  const cap = await startCapture(hosts[0]!.ns, 'eth0', file, ['not', 'port', '2379']);
  assert.ok(markerPing(p1, p2) && markerPing(p1, p3) && markerPing(p2, p1));
  await stopCapture(cap);
  assert.ok(countPackets(file, ['udp', 'port', '51820']) >= 12, 'encrypted traffic was captured');
  assert.equal(captureHolds(file, Buffer.from(MARKER)), false, 'the marker never appears');
  assert.equal(countPackets(file, ['net', '10.244.0.0/16']), 0, 'no inner address on the wire');
  // IPv4 only: the lab's veths speak IPv6 link-local (ND, MLD) among themselves.
  assert.equal(countPackets(file, ['ip', 'and', 'not', 'udp', 'port', '51820']), 0);
});

test('fail closed: with the device deleted nothing leaves in clear; repaired ≤ 1 s once twilld runs', { skip }, async () => {
  const [h1] = hosts as [LabHost];
  const [p1, p2] = pods as [LabPod, LabPod];
  const file = path.join(lab.dir, 'closed.pcap');
  const cap = await startCapture(h1.ns, 'eth0', file, ['not', 'port', '2379']);
  // Hold twilld (SIGSTOP, by PID) so the device stays gone while we send.
  process.kill(h1.daemon!.pid, 'SIGSTOP');
  let deletedAt = 0;
  try {
    ipn(h1.ns, 'link', 'del', dev(h1));
    deletedAt = performance.now();
    assert.equal(markerPing(p1, p2, 5), false, 'no answer without the device');
    assert.deepEqual(routes(h1), ['unreachable 10.244.0.0/16'], 'only the fail-closed route is left');
  } finally {
    process.kill(h1.daemon!.pid, 'SIGCONT');
  }
  const resumed = performance.now();
  const ms = await waitFor(() => converged(h1), 5_000, 'repaired', 10);
  assert.ok(ms <= 1000, `repaired in ${ms.toFixed(0)} ms after twilld resumed (device gone ${(resumed - deletedAt).toFixed(0)} ms)`);
  await waitFor(() => markerPing(p1, p2, 1), 5_000, 'path back', 100);
  await stopCapture(cap);
  assert.equal(captureHolds(file, Buffer.from(MARKER)), false, 'the marker never appeared in clear');
  assert.equal(countPackets(file, ['net', '10.244.0.0/16']), 0);
  assert.ok(countPackets(file, ['udp', 'port', '51820']) > 0);
  console.log(`# fail-closed: device repaired ${ms.toFixed(0)} ms after twilld resumed`);
});

test('drift: a peer removed with `wg`, a route deleted, the device deleted: each restored ≤ 1 s', { skip }, async () => {
  const [h1, h2] = hosts as [LabHost, LabHost];
  const key = byIp.get(h2.ip)!.BackendData.PublicKey;
  spawnSync('wg', ['set', dev(h1), 'peer', key, 'remove']);
  assert.ok(!wgPeers(h1).some((p) => p.key === key));
  const peerMs = await waitFor(() => converged(h1), 5_000, 'peer restored', 5);
  ipn(h1.ns, 'route', 'del', byIp.get(h2.ip)!.subnet, 'dev', dev(h1));
  const routeMs = await waitFor(() => converged(h1), 5_000, 'route restored', 5);
  // The device itself, with twilld running: wireguard-go replaced, device, peers and routes back.
  ipn(h1.ns, 'link', 'del', dev(h1));
  const deviceMs = await waitFor(() => converged(h1), 5_000, 'device restored', 5);
  assert.ok(peerMs <= 1000 && routeMs <= 1000 && deviceMs <= 1000, `peer ${peerMs.toFixed(0)} ms, route ${routeMs.toFixed(0)} ms, device ${deviceMs.toFixed(0)} ms`);
  assert.match(metric(h1, /^twill_wireguard_peer_changes_total\{op="write"\}/) ?? '', / [1-9][0-9]*$/);
  assert.match(metric(h1, /^twill_drift_repaired_total\{kind="route"\}/) ?? '', / [1-9][0-9]*$/);
  console.log(`# drift: peer restored in ${peerMs.toFixed(0)} ms, route in ${routeMs.toFixed(0)} ms, deleted device in ${deviceMs.toFixed(0)} ms`);
});

test('a lease with a malformed key is skipped, counted, never a peer', { skip }, async () => {
  const admin = await lab.admin();
  try {
    await admin.put(`${ETCD_PREFIX}/subnets/10.244.250.0-24`, '{"PublicIP":"172.30.0.99","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"c2hvcnQ="}}');
    await waitFor(() => / 1$/.test(metric(hosts[0]!, /^twill_leases_skipped_total\{reason="bad-key"\}/) ?? ''), 5_000, 'counted', 50);
    for (const h of hosts) assert.ok(converged(h), `${h.name} unchanged`);
  } finally {
    await admin.delete(`${ETCD_PREFIX}/subnets/10.244.250.0-24`);
    admin.close();
  }
});

test('SIGKILL + restart of twilld under a 10 ms ping: 0 lost, same public key', { skip }, async () => {
  const [, h2] = hosts as [LabHost, LabHost];
  const [p1, p2] = pods as [LabPod, LabPod];
  const keyBefore = (await leases()).get(h2.ip)!.BackendData.PublicKey;
  const ping = spawn('ip', ['netns', 'exec', p1.ns, 'ping', '-n', '-q', '-i', '0.01', '-c', '400', '-W', '1', podIp(p2)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  ping.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise((r) => ping.once('exit', r));
  await new Promise((r) => setTimeout(r, 500));
  await lab.stopDaemon(h2, 'SIGKILL');
  const since = lab.logSize(h2);
  lab.startDaemon(h2);
  await lab.waitReady(h2, 30_000, since);
  await done;
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  assert.ok(m, out);
  console.log(`# SIGKILL + restart: ${m[1]} sent, ${m[2]} received`);
  assert.equal(Number(m[2]), Number(m[1]), 'no ping lost');
  assert.equal((await leases()).get(h2.ip)!.BackendData.PublicKey, keyBefore);
  assert.ok(fs.readFileSync(lab.daemonLog(h2), 'utf8').slice(since).includes('"adopted"'), 'wireguard-go adopted, not restarted');
});

test('key rotation: `twillctl rotate-wireguard-key` + restart; every peer has the new key within a second', { skip }, async () => {
  const [h1, h2, h3] = hosts as [LabHost, LabHost, LabHost];
  const twillctl = path.resolve(__dirname, '..', '..', 'src', 'cmd', 'twillctl.js');
  const r = spawnSync(process.execPath, [twillctl, 'rotate-wireguard-key', '--state-dir', lab.stateDir(h2), '--env-file', '/dev/null'], { encoding: 'utf8' });
  const fresh = /public key (\S+)/.exec(r.stdout)?.[1];
  assert.ok(fresh && fresh !== byIp.get(h2.ip)!.BackendData.PublicKey, r.stdout + r.stderr);
  await lab.stopDaemon(h2);
  const since = lab.logSize(h2);
  lab.startDaemon(h2);
  await waitFor(() => [h1, h3].every((h) => wgPeers(h).some((p) => p.key === fresh)), 15_000, 'peers switched', 5);
  const switchedAt = Date.now();
  // From the moment h2 had rewritten its lease (its log line comes after etcd's answer).
  // (pino writes asynchronously: the peers may well have switched before the line is in the file).
  const heldLine = (): string | undefined => fs.readFileSync(lab.daemonLog(h2), 'utf8').slice(since).split('\n').find((l) => l.includes('"msg":"subnet lease held"'));
  await waitFor(() => heldLine() !== undefined, 5_000, 'h2 logged its lease', 10);
  const held = heldLine()!;
  const switchMs = switchedAt - Date.parse((JSON.parse(held) as { time: string }).time);
  console.log(`# rotation: h1 and h3 had h2's new key ${switchMs} ms after h2 rewrote its lease`);
  assert.ok(switchMs <= 1000, `${switchMs} ms`);
  await waitFor(() => spawnSync('wg', ['show', dev(h2), 'public-key'], { encoding: 'utf8' }).stdout.trim() === fresh, 5_000, 'h2 uses its new key', 10);
  byIp = await leases();
  assert.equal(byIp.get(h2.ip)!.BackendData.PublicKey, fresh);
  for (const h of hosts) await waitFor(() => converged(h), 5_000, `${h.name} converged`, 20);
  // A new key means new handshakes: the mesh is back once they are done (each pair's first try may wait for one).
  let failed: string[] = [];
  const meshMs = await waitFor(() => (failed = meshFailures()).length === 0, 10_000, 'mesh after rotation', 100).catch(() => Infinity);
  assert.deepEqual(failed, []);
  console.log(`# rotation: every pod reached every pod again ${meshMs.toFixed(0)} ms after the peers switched`);
});

test('a removed lease removes its peer and route', { skip }, async () => {
  const [h1, , h3] = hosts as [LabHost, LabHost, LabHost];
  await lab.stopDaemon(h3);
  const admin = await lab.admin();
  try {
    await admin.delete(`${ETCD_PREFIX}/subnets/${byIp.get(h3.ip)!.subnet.replace('/', '-')}`);
  } finally {
    admin.close();
  }
  const gone = byIp.get(h3.ip)!;
  const ms = await waitFor(() => !wgPeers(h1).some((p) => p.key === gone.BackendData.PublicKey) && !routes(h1).some((r) => r.includes(gone.subnet)), 5_000, 'peer removed', 10);
  assert.ok(ms <= 1000, `${ms.toFixed(0)} ms`);
  assert.deepEqual(wgPeers(h1).map((p) => p.key), [byIp.get(hosts[1]!.ip)!.BackendData.PublicKey]);
});

test('backend changed to vxlan + restart: twill-wg, its wireguard-go and the unreachable route are gone; pods mesh over VXLAN', { skip }, async () => {
  const live = hosts.slice(0, 2);
  const pids = live.map((h) => Number(fs.readFileSync(path.join(lab.stateDir(h), `${dev(h)}.wireguard-go.pid`), 'utf8')));
  await setConfigAndRestart(lab, live, labNetworkConfig('vxlan'));
  for (const [i, h] of live.entries()) {
    await waitFor(() => !fs.existsSync(`/proc/${pids[i]}`), 5_000, `${h.name}: wireguard-go stopped`, 20);
    assert.equal(ipJson<{ ifname: string }>(h.ns, 'link', 'show').some((l) => l.ifname === dev(h)), false);
    assert.ok(!routes(h).some((r) => r.startsWith('unreachable')), `${h.name}: ${routes(h).join(', ')}`);
  }
  const [p1, p2] = pods as [LabPod, LabPod];
  assert.ok(pingFrom(p1.ns, podIp(p2), { count: 2, timeoutS: 2 }) && pingFrom(p2.ns, podIp(p1), { count: 2, timeoutS: 2 }));
});
