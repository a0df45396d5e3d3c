// Issue 11's end-to-end proof on two underlay segments: h1, h2 on segment A (one bridge), h3
// on segment B behind a router namespace.
// - vxlan + DirectRouting: h1↔h2 take a plain route via each other's underlay IP, everything to
//   and from h3 goes over VXLAN; every pod reaches every pod. When h1's route to h2 changes
//   (h2 put behind the router), h1's daemon switches h2 to VXLAN, and back.
// - The network config changes to host-gw and the daemons restart: leases are re-published
//   with BackendType "host-gw", the VXLAN device and its entries are swept; h1↔h2 pods mesh;
//   h3 is reported (one warning, counted in /metrics), not programmed, and h1↔h2 are unaffected.
// - Back to plain vxlan: every peer encapsulated again, host-gw's routes replaced.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { isRoot, ipJson, ipn, waitFor } from '../support/netns';
import { createTestLab, leases as labLeases, meshFailures, metricLine as metric, pingFrom, podIp, setConfigAndRestart as restartOn } from '../support/lab';
import { labNetworkConfig, type Lab, type LabHost, type LabPod } from '../../src/lab/lab';

const skip = !isRoot() ? 'needs root' : false;
let lab: Lab;
let h1: LabHost;
let h2: LabHost;
let h3: LabHost;
let hosts: LabHost[] = [];
const pods: LabPod[] = [];

interface FlannelLease {
  PublicIP: string;
  BackendType: string;
  BackendData?: { VtepMAC: string };
}

const leases = () => labLeases<FlannelLease>(lab);

let subnets = new Map<string, string>();
const subnetOf = (h: LabHost): string => subnets.get(h.ip)!;
const routes = (h: LabHost): string[] =>
  ipJson<{ dst: string; gateway?: string; dev: string; flags: string[] }>(h.ns, 'route', 'show', 'proto', '113')
    .map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}${r.flags.includes('onlink') ? ' onlink' : ''}`)
    .sort();
const hasDevice = (h: LabHost): boolean => ipJson(h.ns, 'link', 'show').some((l) => (l as { ifname: string }).ifname === 'twill.1');
/** host-gw's device's IPv4 addresses (its <subnet>.0/32, the overlay address probes use); null when it is absent. */
const hostGwDevice = (h: LabHost): string[] | null => {
  const l = ipJson<{ ifname: string; addr_info: Array<{ family: string; local: string; prefixlen: number }> }>(h.ns, 'address', 'show').find((x) => x.ifname === 'twill-hostgw');
  return l ? l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`) : null;
};
const direct = (peer: LabHost): string => `${subnetOf(peer)} via ${peer.ip} dev eth0`;
const vxlan = (peer: LabHost): string => `${subnetOf(peer)} via ${subnetOf(peer).split('/')[0]} dev twill.1 onlink`;

const setConfigAndRestart = (config: string): Promise<void> => restartOn(lab, hosts, config);

before(async () => {
  if (skip) return;
  lab = await createTestLab({ networkConfig: labNetworkConfig('vxlan', true) });
  h1 = lab.addHost('h1');
  h2 = lab.addHost('h2');
  h3 = lab.addHost('h3', 'b');
  hosts = [h1, h2, h3];
  for (const h of hosts) lab.startDaemon(h);
  for (const h of hosts) await lab.waitReady(h, 30_000);
  subnets = new Map([...(await leases())].map(([ip, l]) => [ip, l.subnet]));
  for (const h of hosts) pods.push(await lab.addPod(h));
});

after(async () => {
  if (lab) await lab.down();
});

test('the lab puts h3 on segment B behind the router: h1 reaches it through a gateway, h2 directly', { skip }, () => {
  assert.match(h3.ip, /^172\.31\.0\./);
  const via = ipJson<{ gateway?: string; dev: string }>(h1.ns, 'route', 'get', h3.ip)[0]!;
  assert.equal(via.gateway, '172.30.0.254');
  assert.equal(ipJson<{ gateway?: string }>(h1.ns, 'route', 'get', h2.ip)[0]!.gateway, undefined);
});

test('vxlan + DirectRouting: h1↔h2 direct, everything to h3 over VXLAN; every pod reaches every pod', { skip }, async () => {
  await waitFor(() => routes(h1).length === 2 && routes(h2).length === 2 && routes(h3).length === 2, 10_000, 'peers programmed', 100);
  assert.deepEqual(routes(h1), [direct(h2), vxlan(h3)].sort());
  assert.deepEqual(routes(h2), [direct(h1), vxlan(h3)].sort());
  assert.deepEqual(routes(h3), [vxlan(h1), vxlan(h2)].sort());
  assert.match(metric(h1, /^twill_peer_paths\{path="direct"\}/) ?? '', / 1$/);
  assert.match(metric(h1, /^twill_peer_paths\{path="vxlan"\}/) ?? '', / 1$/);
  // The pod MTU stays VXLAN's.
  assert.match(fs.readFileSync(lab.subnetFile(h1), 'utf8'), /FLANNEL_MTU=1450/);
  assert.deepEqual(meshFailures(pods), []);
});

test('the daemon follows the underlay: h2 moved behind the router (a host route on h1) goes over VXLAN, and back direct when it is removed', { skip }, async () => {
  const podOf = (h: LabHost) => pods.find((p) => p.host === h.name)!;
  ipn(h1.ns, 'route', 'add', `${h2.ip}/32`, 'via', '172.30.0.254', 'dev', 'eth0');
  try {
    const ms = await waitFor(() => routes(h1).includes(vxlan(h2)), 2000, 'h1 encapsulates to h2', 10);
    assert.ok(ms < 2000);
    assert.ok(pingFrom(podOf(h1).ns, podIp(podOf(h2)), { count: 2, timeoutS: 1 }), 'h1 pod reaches h2 pod over VXLAN');
    assert.match(metric(h1, /^twill_peer_paths\{path="direct"\}/) ?? '', / 0$/);
  } finally {
    ipn(h1.ns, 'route', 'del', `${h2.ip}/32`);
  }
  await waitFor(() => routes(h1).includes(direct(h2)), 2000, 'h1 back to the direct route', 10);
  assert.deepEqual(routes(h1), [direct(h2), vxlan(h3)].sort());
  assert.ok(pingFrom(podOf(h1).ns, podIp(podOf(h2)), { count: 2, timeoutS: 1 }));
});

test('backend changed to host-gw + restart: leases re-published, VXLAN swept; h1↔h2 pods mesh; h3 reported, counted, not programmed', { skip }, async () => {
  await setConfigAndRestart(labNetworkConfig('host-gw'));
  await waitFor(() => routes(h1).length === 1 && routes(h2).length === 1, 10_000, 'host-gw routes', 100);
  const ls = await leases();
  assert.deepEqual([...ls.values()].map((l) => l.BackendType), ['host-gw', 'host-gw', 'host-gw']);
  assert.ok([...ls.values()].every((l) => l.BackendData === undefined), 'flannel’s host-gw lease has no BackendData');
  for (const h of hosts) assert.equal(hasDevice(h), false, `${h.name}: the VXLAN device is swept`);
  for (const h of hosts) assert.deepEqual(hostGwDevice(h), [`${subnetOf(h).split('/')[0]}/32`], `${h.name}: host-gw's device holds <subnet>.0/32`);
  assert.deepEqual(routes(h1), [direct(h2)]);
  assert.deepEqual(routes(h2), [direct(h1)]);
  assert.deepEqual(routes(h3), [], 'h3 reaches nobody directly');
  assert.match(fs.readFileSync(lab.subnetFile(h1), 'utf8'), /FLANNEL_MTU=1500/);
  assert.deepEqual(meshFailures(pods.filter((p) => p.host !== h3.name)), []);
  // h3 is reported once by h1 and counted.
  assert.match(metric(h1, /^twill_peers_unreachable /) ?? '', / 1$/);
  assert.match(metric(h1, /^twill_leases_skipped_total\{reason="not-directly-reachable"\}/) ?? '', / 1$/);
  const warnings = fs.readFileSync(lab.daemonLog(h1), 'utf8').split('\n').filter((l) => l.includes('"reason":"not-directly-reachable"'));
  assert.equal(warnings.length, 1, 'one warning for h3');
  assert.ok(warnings[0]!.includes(subnetOf(h3)));
});

test('back to plain vxlan + restart: every peer encapsulated again, host-gw routes replaced', { skip }, async () => {
  await setConfigAndRestart(labNetworkConfig('vxlan'));
  // Every host, h2 included: a host that restarted before its peers re-published saw their
  // host-gw leases (skipped as wrong-backend) and programs them only as their vxlan leases arrive.
  await waitFor(() => routes(h1).length === 2 && routes(h2).length === 2 && routes(h3).length === 2, 10_000, 'vxlan routes', 100);
  assert.deepEqual(routes(h1), [vxlan(h2), vxlan(h3)].sort());
  assert.deepEqual([...(await leases()).values()].map((l) => l.BackendType), ['vxlan', 'vxlan', 'vxlan']);
  for (const h of hosts) assert.equal(hostGwDevice(h), null, `${h.name}: host-gw's device is swept`);
  assert.deepEqual(meshFailures(pods), []);
});
