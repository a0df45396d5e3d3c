// Issue 2's end-to-end proof in the lab: 3 hosts (namespaces on an underlay bridge, etcd in
// the underlay namespace) get distinct flannel-format leases, each programs exactly the three
// entries per peer, pings every peer's <subnet>.0 over VXLAN; a 4th host joins and leaves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot, settle, waitFor } from '../support/netns';
import { createTestLab, expectedEntries, hostEntries, httpGetInNs, leasesBySubnet, pingFrom } from '../support/lab';
import type { Lab, LabHost } from '../../src/lab/lab';
import { ETCD_PREFIX } from '../../src/lab/lab';

const skip = !isRoot() ? 'needs root' : false;
let lab: Lab;

interface FlannelLease {
  PublicIP: string;
  PublicIPv6: null;
  BackendType: string;
  BackendData: { VNI: number; VtepMAC: string };
}

const leases = () => leasesBySubnet<FlannelLease>(lab);

function peersOf(host: LabHost, all: Map<string, FlannelLease>) {
  return [...all].filter(([, l]) => l.PublicIP !== host.ip).map(([subnet, l]) => ({ subnet, publicIp: l.PublicIP, vtepMac: l.BackendData.VtepMAC }));
}

function subnetOf(host: LabHost, all: Map<string, FlannelLease>): string {
  const e = [...all].find(([, l]) => l.PublicIP === host.ip);
  assert.ok(e, `${host.name} has a lease`);
  return e[0];
}

async function allProgrammed(hosts: LabHost[], timeoutMs: number): Promise<void> {
  await waitFor(
    () => {
      return hosts.every((h) => {
        const want = expectedEntries(peersOf(h, cachedLeases));
        return JSON.stringify(hostEntries(h.ns)) === JSON.stringify(want);
      });
    },
    timeoutMs,
    'every host programmed exactly its peers',
    50,
  );
}
let cachedLeases = new Map<string, FlannelLease>();

before(async () => {
  if (skip) return;
  lab = await createTestLab();
});

after(async () => {
  if (skip) return;
  await lab?.down();
});

test('three hosts lease distinct subnets in flannel JSON and program exactly three entries per peer', { skip }, async () => {
  const hosts = [lab.addHost(), lab.addHost(), lab.addHost()];
  for (const h of hosts) lab.startDaemon(h);
  for (const h of hosts) await lab.waitReady(h);

  cachedLeases = await leases();
  assert.equal(cachedLeases.size, 3);
  const subnets = hosts.map((h) => subnetOf(h, cachedLeases));
  assert.equal(new Set(subnets).size, 3, 'distinct subnets');
  for (const [subnet, l] of cachedLeases) {
    assert.match(subnet, /^10\.244\.\d+\.0\/24$/);
    assert.deepEqual(Object.keys(l), ['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData']);
    assert.equal(l.PublicIPv6, null);
    assert.equal(l.BackendType, 'vxlan');
    assert.equal(l.BackendData.VNI, 1);
    assert.match(l.BackendData.VtepMAC, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  }
  await allProgrammed(hosts, 10_000);
  for (const h of hosts) {
    const e = hostEntries(h.ns);
    assert.equal(e.routes.length, 2);
    assert.equal(e.neighs.length, 2);
    assert.equal(e.fdb.length, 2);
  }

  // Readiness and metrics over HTTP inside the host namespace.
  const ready = httpGetInNs(hosts[0]!.ns, 9464, '/readyz');
  assert.equal(ready.status, 200, ready.body);
  // Gauges the daemon sets around programming: read until they settle (bounded), not once.
  const metrics = await settle(
    () => httpGetInNs(hosts[0]!.ns, 9464, '/metrics'),
    (m) => /^twill_peers 2$/m.test(m.body) && /^twill_programmed_entries\{kind="route"\} 2$/m.test(m.body),
    5_000,
    50,
  );
  assert.match(metrics.body, /^twill_peers 2$/m);
  assert.match(metrics.body, /^twill_programmed_entries\{kind="route"\} 2$/m);
});

test("each host pings every other host's <subnet>.0 through the VXLAN device", { skip }, () => {
  const hosts = lab.state.hosts;
  for (const from of hosts) {
    for (const to of hosts) {
      if (from === to) continue;
      const target = subnetOf(to, cachedLeases).split('/')[0]!;
      assert.ok(pingFrom(from.ns, target, { count: 2, timeoutS: 2 }), `${from.name} -> ${to.name} (${target})`);
    }
  }
});

test('a 4th host joins and everyone programs it; it leaves and everyone removes it', { skip }, async () => {
  const h4 = lab.addHost();
  lab.startDaemon(h4);
  await lab.waitReady(h4);
  cachedLeases = await leases();
  assert.equal(cachedLeases.size, 4);
  const hosts = lab.state.hosts;
  await allProgrammed(hosts, 10_000);
  const h4subnet = subnetOf(h4, cachedLeases);
  for (const h of hosts.slice(0, 3)) assert.ok(pingFrom(h.ns, h4subnet.split('/')[0]!, { count: 2, timeoutS: 2 }), `${h.name} -> h4`);

  // Leave: stop the daemon (SIGTERM leaves kernel state and lease), then delete the lease.
  await lab.stopDaemon(h4);
  assert.ok(hostEntries(h4.ns).routes.length === 3, 'SIGTERM left h4 kernel state in place');
  const admin = await lab.admin();
  try {
    await admin.delete(`${ETCD_PREFIX}/subnets/${h4subnet.replace('/', '-')}`);
  } finally {
    admin.close();
  }
  cachedLeases.delete(h4subnet);
  await allProgrammed(hosts.slice(0, 3), 10_000);
  for (const h of hosts.slice(0, 3)) assert.ok(!hostEntries(h.ns).routes.some((r) => r.startsWith(h4subnet)), `${h.name} removed h4`);
});

test('restart keeps the subnet and the VTEP MAC', { skip }, async () => {
  const h1 = lab.state.hosts[0]!;
  const before = subnetOf(h1, cachedLeases);
  const mac = cachedLeases.get(before)!.BackendData.VtepMAC;
  await lab.stopDaemon(h1);
  const offset = lab.logSize(h1);
  lab.startDaemon(h1);
  await lab.waitReady(h1, 30_000, offset);
  const after = await leases();
  assert.equal(subnetOf(h1, after), before);
  assert.equal(after.get(before)!.BackendData.VtepMAC, mac);
});

test('systemd notification: READY=1 once ready, WATCHDOG=1 when WATCHDOG_USEC is set', { skip }, async () => {
  const { spawn } = await import('node:child_process');
  const fs = await import('node:fs');
  const path = await import('node:path');
  const sock = path.join(lab.dir, 'notify.sock');
  // Node cannot bind AF_UNIX datagram sockets; python3 stands in for systemd here.
  const listener = spawn('python3', ['-u', '-c', [
    'import socket,sys',
    's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)',
    `s.bind(${JSON.stringify(sock)})`,
    'print("listening",flush=True)',
    'while True: print(s.recv(4096).decode(),flush=True)',
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  listener.stdout.on('data', (d) => (out += d));
  try {
    await waitFor(() => out.includes('listening'), 5000, 'notify listener');
    const h = lab.addHost('n1');
    const offset = lab.logSize(h);
    lab.startDaemon(h, [], { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '2000000' });
    await lab.waitReady(h, 30_000, offset);
    await waitFor(() => out.includes('READY=1') && out.includes('WATCHDOG=1'), 5000, 'READY=1 and WATCHDOG=1');
    const lines = out.split('\n');
    assert.ok(lines.indexOf('READY=1') > 0);
    await lab.stopDaemon(h);
    await waitFor(() => out.includes('STOPPING=1'), 5000, 'STOPPING=1');
  } finally {
    listener.kill('SIGTERM');
    fs.rmSync(sock, { force: true });
  }
});
