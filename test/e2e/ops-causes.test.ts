// Issue 16: twilld says the cause. Real daemons in lab hosts (namespaces), a real etcd:
//   - etcd endpoint refusing connections → /readyz and `twillctl status` (text and --json) name
//     the endpoint and ECONNREFUSED, from the first line on (no bare "circuit breaker is open");
//   - an invalid network config → they name the key and the field;
//   - --iface that does not exist → exit 2 at start-up, listing the interfaces there are.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { isRoot, waitFor } from '../support/netns';
import { createTestLab, httpGetInNs } from '../support/lab';
import { preserveLogs } from '../support/faults';
import { childEnv } from '../support/proc';
import { ETCD_PREFIX, exitOf, type Lab, type LabHost } from '../../src/lab/lab';
import { isRunning } from '../../src/lab/procs';

const skip = !isRoot() ? 'needs root' : !fs.existsSync('/usr/bin/etcd') ? 'needs /usr/bin/etcd' : false;
const TWILLCTL = path.resolve(__dirname, '../../src/cmd/twillctl.js');
const BAD_CONFIG = '{"Network":"10.244.0.0/16","SubnetLen":33,"Backend":{"Type":"vxlan"}}';
const PREFIX = '/twill-causes';

let lab: Lab;
let refused: LabHost;
let badConfig: LabHost;

function twillctlIn(h: LabHost, ...args: string[]) {
  return spawnSync('ip', ['netns', 'exec', h.ns, process.execPath, TWILLCTL, ...args, '--settings', '/dev/null'], { encoding: 'utf8', env: childEnv(), timeout: 30_000 });
}

interface Ready {
  ready: boolean;
  reasons: string[];
  blocking?: { subject: string; error: string; next: string };
}

function readyz(h: LabHost): Ready {
  return JSON.parse(httpGetInNs(h.ns, 9464, '/readyz').body) as Ready;
}

/** /readyz once it names a blocker. */
async function blocked(h: LabHost): Promise<Ready & { blocking: NonNullable<Ready['blocking']> }> {
  let r: Ready | undefined;
  await waitFor(() => {
    try {
      r = readyz(h);
      return r.blocking !== undefined;
    } catch {
      return false;
    }
  }, 15_000, `a blocker on ${h.name}`, 100);
  return r as Ready & { blocking: NonNullable<Ready['blocking']> };
}

before(async () => {
  if (skip) return;
  lab = await createTestLab();
  refused = lab.addHost();
  badConfig = lab.addHost();
  const admin = await lab.admin();
  try {
    await admin.put(`${PREFIX}/config`, BAD_CONFIG);
  } finally {
    admin.close();
  }
  lab.startDaemon(refused, ['--etcd-endpoints', 'http://172.30.0.1:2399']);
  lab.startDaemon(badConfig, ['--etcd-prefix', PREFIX]);
});

after(async () => {
  if (skip) return;
  if (lab) preserveLogs(lab, 'causes');
  await lab?.down();
});

test('etcd refusing connections: readiness, status and its JSON name the endpoint and the cause', { skip }, async () => {
  const r = await blocked(refused);
  assert.equal(r.ready, false);
  assert.equal(r.blocking.subject, 'etcd http://172.30.0.1:2399');
  assert.match(r.blocking.error, /ECONNREFUSED 172\.30\.0\.1:2399/);
  assert.match(r.blocking.next, /--etcd-endpoints/);
  const text = twillctlIn(refused, 'status');
  assert.equal(text.status, 1, text.stderr);
  assert.match(text.stdout, /^  blocked by       etcd http:\/\/172\.30\.0\.1:2399: .*ECONNREFUSED 172\.30\.0\.1:2399/m);
  const json = JSON.parse(twillctlIn(refused, 'status', '--json').stdout) as { blocking: { subject: string } };
  assert.equal(json.blocking.subject, 'etcd http://172.30.0.1:2399');
  // Past the client's circuit breaker (it opens after 3 failures, for 5 s): every etcd line of
  // the log names the cause, none is only the breaker's answer, and the line does not alternate.
  await new Promise((r) => setTimeout(r, 8000));
  const log = fs.readFileSync(lab.daemonLog(refused), 'utf8').split('\n').filter((l) => /etcd|circuit/i.test(l) && /"level":"(warn|error)"/.test(l));
  assert.equal(log.length, 1, log.join('\n'));
  assert.match(log[0]!, /"err":"etcd get config failed: connect ECONNREFUSED 172\.30\.0\.1:2399"/);
  assert.doesNotMatch(JSON.stringify(readyz(refused)), /circuit breaker/);
});

test('an invalid network config: readiness and status name the key and the field', { skip }, async () => {
  const r = await blocked(badConfig);
  assert.equal(r.blocking.subject, `network config ${PREFIX}/config field SubnetLen`);
  assert.match(r.blocking.next, /etcdctl put/);
  const text = twillctlIn(badConfig, 'status');
  assert.match(text.stdout, new RegExp(`^  blocked by       network config ${PREFIX}/config field SubnetLen: network config SubnetLen`, 'm'));
  assert.match(text.stdout, /errors           etcd 0/, 'an etcd that answers is not counted as an etcd error');
  // Fixed in etcd: ready within the poll period, and the blocker is gone.
  const admin = await lab.admin();
  try {
    await admin.put(`${PREFIX}/config`, BAD_CONFIG.replace('33', '24'));
  } finally {
    admin.close();
  }
  await lab.waitReady(badConfig, 30_000);
  await waitFor(() => readyz(badConfig).ready, 10_000, 'ready', 100);
  assert.equal(readyz(badConfig).blocking, undefined);
});

test('--iface that does not exist: exit 2 at start-up, naming the interfaces there are', { skip }, async () => {
  const h = lab.addHost();
  const p = lab.startDaemon(h, ['--iface', 'nosuchif', '--etcd-prefix', ETCD_PREFIX]);
  await waitFor(() => !isRunning(p) && exitOf(p) !== 'not a child of this process, or not reaped yet', 10_000, 'twilld to exit', 50);
  assert.equal(exitOf(p), 'exit code 2');
  const log = fs.readFileSync(lab.daemonLog(h), 'utf8');
  assert.match(log, /"problems":\["--iface nosuchif: no such interface on this host; interfaces here: lo \(127\.0\.0\.1\), [^"]*eth0 \(172\.30\.0\.13\)/);
  assert.ok(!fs.existsSync(lab.subnetFile(h)), 'no subnet file');
  assert.ok(!fs.existsSync(path.join(h.dir, 'state')), 'no state dir');
});
