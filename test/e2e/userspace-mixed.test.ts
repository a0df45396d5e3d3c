// Issue 6's end-to-end proof in the lab: a mixed cluster. h1 runs the kernel dataplane, h2 and
// h4 the userspace one, h3 `--dataplane auto` (kernel here, where vxlan exists). Every host
// reaches every other host's <subnet>.0, every pod every other pod, both directions; bulk TCP
// between pods crosses kernel→userspace, userspace→kernel and userspace→userspace intact; the
// kernel VTEP on h1 counts the userspace hosts' frames as received VXLAN, and the userspace
// hosts' /metrics show their frames.
//
// Needs twilld to honour `--dataplane userspace|auto` (src/daemon wiring of
// src/userspace/select.ts; see issue 6). Until that is wired, twilld refuses the flag at
// start-up and this file skips itself saying so, rather than failing for a known gap.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { isRoot, ipJson, tcpTransfer, waitFor } from '../support/netns';
import { createTestLab, httpGetInNs, leases, pingFrom, podIp } from '../support/lab';
import type { Lab, LabHost, LabPod } from '../../src/lab/lab';
import { addPod } from '../../src/lab/pods';

const MODES: Array<[string, string[]]> = [
  ['kernel', []],
  ['userspace', ['--dataplane', 'userspace']],
  ['auto', ['--dataplane', 'auto']],
  ['userspace', ['--dataplane', 'userspace']],
];
const NOT_WIRED = 'the userspace dataplane is not available in this version';

let skip: string | false = !isRoot() ? 'needs root' : false;
let lab: Lab;
let hosts: LabHost[] = [];
let pods: LabPod[] = [];
const subnetOf = new Map<string, string>();

before(async () => {
  if (skip) return;
  lab = await createTestLab();
  hosts = MODES.map(() => lab.addHost());
  hosts.forEach((h, i) => lab.startDaemon(h, MODES[i]![1]));
  // A twilld that does not know the userspace dataplane exits at once with a known message.
  const refused = (h: LabHost) => !lab.daemonRunning(h) && fs.readFileSync(lab.daemonLog(h), 'utf8').includes(NOT_WIRED);
  const ready = (h: LabHost) => fs.readFileSync(lab.daemonLog(h), 'utf8').includes('"msg":"ready"');
  await waitFor(() => hosts.some(refused) || hosts.every((h) => ready(h) || !lab.daemonRunning(h)), 30_000, 'daemons ready or refusing', 100);
  if (hosts.some(refused)) {
    skip = 'twilld does not accept --dataplane userspace yet (daemon wiring of src/userspace/select.ts pending)';
    return;
  }
  for (const h of hosts) await lab.waitReady(h, 30_000);
  for (const [ip, l] of await leases<{ PublicIP: string }>(lab)) subnetOf.set(ip, l.subnet.split('/')[0]!);
  for (const h of hosts) pods.push(await addPod(lab, h));
});

after(async () => {
  if (lab) await lab.down();
});


function sub(h: LabHost): string {
  const s = subnetOf.get(h.ip);
  assert.ok(s, `${h.name} has a lease`);
  return s;
}

test('each host runs the dataplane it was asked for: TAP on userspace hosts, VXLAN elsewhere', (t) => {
  if (skip) return t.skip(skip);
  const kinds = hosts.map((h) => {
    const [l] = ipJson<Record<string, any>>(h.ns, '-d', 'link', 'show', 'twill.1');
    return l!['linkinfo']['info_kind'] as string;
  });
  assert.deepEqual(kinds, ['vxlan', 'tun', 'vxlan', 'tun']);
  for (const h of hosts) {
    const [l] = ipJson<Record<string, any>>(h.ns, 'link', 'show', 'twill.1');
    assert.equal(l!['mtu'], 1450, `${h.name}: MTU underlay-50 in both modes`);
  }
  assert.match(fs.readFileSync(lab.daemonLog(hosts[2]!), 'utf8'), /auto: the kernel can create VXLAN devices/);
});

test("every host pings every other host's <subnet>.0, both directions", (t) => {
  if (skip) return t.skip(skip);
  for (const from of hosts) {
    for (const to of hosts) {
      if (from === to) continue;
      assert.ok(pingFrom(from.ns, sub(to), { count: 2, timeoutS: 2 }), `${from.name} -> ${to.name} (${sub(to)})`);
    }
  }
});

test('every pod pings every other pod', (t) => {
  if (skip) return t.skip(skip);
  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue;
      assert.ok(pingFrom(a.ns, podIp(b), { count: 2, timeoutS: 2 }), `${a.name} -> ${b.name} (${podIp(b)})`);
    }
  }
});

/** Bulk TCP from pod a to pod b, compared by sha256 on both ends. */
async function podTransfer(a: LabPod, b: LabPod, bytes: number): Promise<void> {
  const { sent, got } = await tcpTransfer(a.ns, b.ns, podIp(b), bytes, 30_000);
  assert.match(sent, /^\d+:[0-9a-f]{64}$/, `${a.name} -> ${b.name}: client finished`);
  assert.equal(got, sent, `${a.name} -> ${b.name}: the server received exactly what was sent`);
}

test('bulk TCP between pods arrives intact across kernel->userspace, userspace->kernel, userspace->userspace', async (t) => {
  if (skip) return t.skip(skip);
  const [p1, p2, , p4] = pods as [LabPod, LabPod, LabPod, LabPod];
  await podTransfer(p1, p2, 32 << 20);
  await podTransfer(p2, p1, 32 << 20);
  await podTransfer(p2, p4, 32 << 20);
});

test('the kernel VTEP decodes the userspace hosts\' frames; userspace /metrics count them', (t) => {
  if (skip) return t.skip(skip);
  const [h1, h2] = hosts as [LabHost, LabHost];
  const rx = () => ipJson<{ stats64: { rx: { packets: number } } }>(h1.ns, '-s', 'link', 'show', 'twill.1')[0]!.stats64.rx.packets;
  const before = rx();
  assert.ok(pingFrom(h2.ns, sub(h1), { count: 5, timeoutS: 2 }));
  assert.ok(rx() - before >= 5, `h1's vxlan device received ${rx() - before} frames from userspace h2`);
  const metrics = httpGetInNs(h2.ns, 9464, '/metrics');
  assert.equal(metrics.status, 200);
  const tx = /^twill_userspace_frames_total\{direction="tx"\} (\d+)$/m.exec(metrics.body);
  assert.ok(tx && Number(tx[1]) > 0, 'tx frames counted on /metrics');
  assert.match(metrics.body, /^twill_userspace_drops_total\{direction="rx",reason="wrong-vni"\} 0$/m);
  assert.doesNotMatch(httpGetInNs(h1.ns, 9464, '/metrics').body, /twill_userspace_frames_total/, 'kernel hosts have no userspace series');
});
