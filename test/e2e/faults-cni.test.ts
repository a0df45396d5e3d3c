// Fault suite (issue 5), case 7: the CNI plugin under load and garbage, on a lab host whose
// subnet file is written by a real twilld. The plugin runs exactly as a runtime runs it: a new
// process in the host's namespace, CNI_* variables, config on stdin. The lab is installed
// (twillctl install) and its host runs `twill-cni serve`, as on a real host: the load goes
// through the installed front-end; the fuzz alternates between the front-end (so the server)
// and the Node plugin run directly, and the server must survive it all.
//   load: 50 parallel ADDs, then 50 parallel DELs — 0 duplicate addresses, 0 leaked
//         allocation files or veths.
//   fuzz: ≥ 10,000 invocations with random/mutated stdin JSON, missing or odd variables,
//         path-like container IDs and ifnames. Each is a spec error (JSON on stdout, non-zero
//         exit, known code), a correct success, or (no CNI_COMMAND at all) the plugin's about
//         text on stderr with exit 0; never a stack trace, a crash, a hang, a file
//         outside dataDir or a leaked allocation. Set TWILL_FUZZ_SEED to replay a run and
//         TWILL_FUZZ_N to change the count.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { deviceFacts, isRoot, ipJson } from '../support/netns';
import { isDeepStrictEqual } from 'node:util';
import { createTestLab } from '../support/lab';
import { cniInvoke, hostVeths, newPodNs, podConf, podDataDir, type CniCall } from '../support/pods';
import { recordFigure, tearDownFaultLab } from '../support/faults';
import { isRunning } from '../../src/lab/procs';
import { install } from '../../src/install/install';
import { CNI_PLUGIN_PATH } from '../../src/install/layout';
import type { Lab, LabHost, LabPod } from '../../src/lab/lab';
import { makeCase, mulberry32, type Case, type FuzzWorld } from '../support/cni-fuzz';


const skip = !isRoot() ? 'needs root' : false;
const FUZZ_N = Number(process.env['TWILL_FUZZ_N'] ?? 10_000);
const SEED = Number(process.env['TWILL_FUZZ_SEED'] ?? randomBytes(4).readUInt32LE(0));
const PARALLEL = Math.max(3, os.cpus().length * 2);

let lab: Lab;
let host: LabHost;
let subnet: { base: string; len: number };
let front: string;

before(async () => {
  if (skip) return;
  const installRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-faults-cni-root-'));
  await install({ root: installRoot });
  front = path.join(installRoot, CNI_PLUGIN_PATH);
  lab = await createTestLab({ installRoot });
  host = lab.addHost();
  lab.startDaemon(host);
  lab.startCniServer(host);
  await lab.waitReady(host);
  await lab.waitCniServer(host);
  const m = /^FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.\d+\/(\d+)$/m.exec(fs.readFileSync(lab.subnetFile(host), 'utf8'));
  assert.ok(m, 'subnet file');
  subnet = { base: m[1]!, len: Number(m[2]) };
});

after(async () => {
  if (skip) return;
  const root = lab?.state.installRoot;
  await tearDownFaultLab(lab, 'cni', { last: root ? [[root, `rm -rf ${root}`, () => fs.rmSync(root, { recursive: true, force: true })]] : [] });
});

function allocationFiles(dir = podDataDir(host)): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort() : [];
}

function attachEnv(command: string, pod: LabPod, id = pod.containerId, ifname = pod.ifname): Record<string, string> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_IFNAME: ifname, CNI_NETNS: `/run/netns/${pod.ns}`, CNI_PATH: '/usr/lib/cni' };
}

/** Calls `twill serve` has logged (answered) so far. */
function servedCalls(): number {
  return fs.readFileSync(path.join(host.dir, 'twill-cni.log'), 'utf8').split('\n').filter((l) => l.includes('"msg":"CNI call')).length;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

test('case 7a: 50 parallel ADDs then 50 parallel DELs: 0 duplicate addresses, 0 leaked files or veths', { skip, timeout: 180_000 }, async () => {
  const pods = Array.from({ length: 50 }, (_, i) => newPodNs(lab, host, `lp${i}`));
  const conf = JSON.stringify(podConf(lab, host));
  const t0 = performance.now();
  const adds = await Promise.all(pods.map((p) => cniInvoke(host.ns, attachEnv('ADD', p), conf, 30_000, front)));
  const addWall = performance.now() - t0;
  const failed = adds.filter((r) => r.code !== 0);
  assert.deepEqual(failed.map((r) => r.stdout), [], 'every ADD succeeded');
  const ips = adds.map((r) => (r.json as { ips: Array<{ address: string }> }).ips[0]!.address);
  const dupes = ips.length - new Set(ips).size;
  for (const ip of ips) assert.ok(ip.startsWith(`${subnet.base}.`) && ip.endsWith(`/${subnet.len}`), `${ip} in the host subnet`);
  assert.equal(allocationFiles().length, 50, 'one allocation file per pod');
  assert.equal(hostVeths(host.ns).length, 50, 'one host veth per pod');
  // The pods really got their addresses (the kernel agrees with the results).
  for (const [i, p] of pods.entries()) {
    const [l] = ipJson<{ addr_info: Array<{ family: string; local: string; prefixlen: number }> }>(p.ns, 'addr', 'show', 'dev', 'eth0');
    const a = l?.addr_info.find((x) => x.family === 'inet');
    assert.equal(a && `${a.local}/${a.prefixlen}`, ips[i]);
  }
  const t1 = performance.now();
  const dels = await Promise.all(pods.map((p) => cniInvoke(host.ns, attachEnv('DEL', p), conf, 30_000, front)));
  const delWall = performance.now() - t1;
  assert.deepEqual(dels.filter((r) => r.code !== 0).map((r) => r.stdout), [], 'every DEL succeeded');
  const leakedFiles = allocationFiles().length;
  const leakedVeths = hostVeths(host.ns).length;
  const addMs = adds.map((r) => r.ms).sort((a, b) => a - b);
  recordFigure({
    id: '7a',
    case: 'CNI: 50 parallel ADDs, then 50 parallel DELs',
    figure: `${dupes} duplicate addresses; ${leakedFiles} leaked allocation files; ${leakedVeths} leaked veths; ADD batch ${(addWall / 1000).toFixed(2)} s (p50 ${Math.round(pct(addMs, 50))} ms, p99 ${Math.round(pct(addMs, 99))} ms under load), DEL batch ${(delWall / 1000).toFixed(2)} s`,
    goal: '0 duplicates, 0 leaks',
    pass: dupes === 0 && leakedFiles === 0 && leakedVeths === 0,
  });
  assert.equal(dupes, 0);
  assert.equal(leakedFiles, 0);
  assert.equal(leakedVeths, 0);
});

// ---- fuzzing --------------------------------------------------------------------------------

const KNOWN_CODES = new Set([1, 2, 3, 4, 5, 6, 7, 11, 50, 100, 101, 102, 103, 104, 105, 106, 107, 108]);
const STACK = /^\s+at .+[:(]\d+:\d+\)?$|\n\s+at |Error: .*\n\s+at |node:internal|Uncaught|FATAL ERROR/m;

interface Verdict {
  ok: boolean;
  why?: string;
  added?: { env: Record<string, string>; stdin: string | Buffer; ip: string };
}

function judge(c: Case, r: CniCall): Verdict {
  if (r.signal) return { ok: false, why: `killed by ${r.signal} (hang or crash)` };
  if (STACK.test(r.stderr) || STACK.test(r.stdout)) return { ok: false, why: `stack trace: ${(r.stderr || r.stdout).slice(0, 300)}` };
  // No CNI_COMMAND at all: run by hand, the plugin says what it is on stderr and exits 0 (as
  // libcni's skel does for the reference plugins); nothing on stdout, nothing done.
  if (!c.env['CNI_COMMAND']) {
    const about = r.code === 0 && r.stdout === '' && /^CNI twill plugin v\S+\nCNI protocol versions supported: /.test(r.stderr);
    return about ? { ok: true } : { ok: false, why: `no CNI_COMMAND: exit ${r.code}, stdout ${JSON.stringify(r.stdout.slice(0, 100))}, stderr ${JSON.stringify(r.stderr.slice(0, 100))}` };
  }
  if (r.stderr.trim() !== '') return { ok: false, why: `stderr output: ${r.stderr.slice(0, 200)}` };
  if (r.code !== 0) {
    const e = r.json as { cniVersion?: unknown; code?: unknown; msg?: unknown } | undefined;
    if (!e || typeof e !== 'object') return { ok: false, why: `exit ${r.code} without error JSON: ${JSON.stringify(r.stdout.slice(0, 200))}` };
    if (typeof e.cniVersion !== 'string' || typeof e.msg !== 'string' || typeof e.code !== 'number') return { ok: false, why: `malformed error JSON ${r.stdout.slice(0, 200)}` };
    if (!KNOWN_CODES.has(e.code)) return { ok: false, why: `unknown error code ${e.code}: ${e.msg}` };
    if (e.code === 100) return { ok: false, why: `internal error: ${r.stdout.slice(0, 300)}` };
    return { ok: true };
  }
  const cmd = c.env['CNI_COMMAND'];
  if (cmd === 'VERSION') {
    const v = r.json as { supportedVersions?: unknown };
    return Array.isArray(v?.supportedVersions) ? { ok: true } : { ok: false, why: `VERSION output ${r.stdout.slice(0, 200)}` };
  }
  if (cmd === 'ADD') {
    const res = r.json as { cniVersion?: string; ips?: Array<{ address?: string; gateway?: string }>; interfaces?: Array<{ name?: string; sandbox?: string }> } | undefined;
    // With a prevResult (chained after another plugin) its addresses come first: ours is the one
    // in the host subnet.
    const ip = res?.ips?.map((x) => x.address).find((a) => a?.startsWith(`${subnet.base}.`) && a.endsWith(`/${subnet.len}`));
    if (!ip) return { ok: false, why: `ADD succeeded without an address in ${subnet.base}.0/${subnet.len}: ${r.stdout.slice(0, 300)}` };
    const sandbox = res?.interfaces?.find((x) => x.sandbox);
    if (!sandbox || sandbox.sandbox !== c.env['CNI_NETNS'] || sandbox.name !== c.env['CNI_IFNAME']) return { ok: false, why: `ADD result interfaces ${JSON.stringify(res?.interfaces)}` };
    return { ok: true, added: { env: c.env, stdin: c.stdin, ip } };
  }
  // DEL, CHECK, STATUS, GC: success prints nothing (GC/DEL) or nothing at all.
  if (r.stdout.trim() !== '' && cmd !== 'CHECK') return { ok: false, why: `${cmd} success printed ${r.stdout.slice(0, 200)}` };
  return { ok: true };
}

/** Every file under `dir`, relative. */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(path.relative(base, p));
  }
  return out;
}

test(`case 7b: ${FUZZ_N} fuzzed plugin invocations: spec errors or correct successes, no stack traces, no stray files, no leaks`, { skip, timeout: 900_000 }, async () => {
  const root = fs.mkdtempSync(path.join(lab.dir, 'fuzz-'));
  const w: FuzzWorld = { root, subnetFile: lab.subnetFile(host), dataDir: path.join(root, 'data'), pods: Array.from({ length: 8 }, (_, i) => newPodNs(lab, host, `fz${i}`)) };
  fs.writeFileSync(path.join(root, 'garbage.env'), 'FLANNEL_SUBNET=banana\nFLANNEL_MTU=-4\n\u0000\u00ff');
  fs.writeFileSync(path.join(root, 'not-a-netns'), 'plain file');
  const rootBefore = new Set(walk(root));
  const outsideBefore = new Set(fs.readdirSync(lab.dir));
  const eth0Before = deviceFacts(host.ns, 'eth0');
  const servedBefore = servedCalls();
  const rnd = mulberry32(SEED);
  const failures: Array<{ i: number; note: string; why: string }> = [];
  let invocations = 0;
  let successes = 0;
  let addSuccesses = 0;
  let next = 0;
  const byCode = new Map<string, number>();
  const t0 = performance.now();

  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= FUZZ_N) return;
      const c = makeCase(rnd, w, i);
      const plugin = i % 2 === 0 ? front : undefined; // the server's path, then Node's own
      const r = await cniInvoke(host.ns, c.env, c.stdin, 30_000, plugin);
      invocations++;
      const code = r.code === 0 ? 'ok' : String((r.json as { code?: number } | undefined)?.code ?? `exit${r.code}`);
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
      const v = judge(c, r);
      if (!v.ok) failures.push({ i, note: c.note, why: v.why! });
      else if (r.code === 0) successes++;
      if (r.code === 0 && c.env['CNI_COMMAND'] === 'ADD') {
        addSuccesses++;
        // Clean up as the runtime would: DEL with the same variables and config must succeed.
        const d = await cniInvoke(host.ns, { ...c.env, CNI_COMMAND: 'DEL' }, c.stdin, 30_000, plugin);
        invocations++;
        if (d.code !== 0 || d.stderr) failures.push({ i, note: `DEL after ${c.note}`, why: `${d.code} ${d.stdout} ${d.stderr}`.slice(0, 300) });
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, () => worker()));
  const wallS = (performance.now() - t0) / 1000;

  // No leaked allocation, no leaked veth, nothing written outside the data dirs.
  const leakedAllocs = walk(root).filter((f) => /\d+\.\d+\.\d+\.\d+$/.test(f));
  const leakedVeths = hostVeths(host.ns);
  const stray = walk(root).filter((f) => !rootBefore.has(f) && !/^data[^/]*\/[A-Za-z0-9][A-Za-z0-9_.-]*\/(last_reserved_ip\.0|\d+\.\d+\.\d+\.\d+)$/.test(f));
  const strayLab = fs.readdirSync(lab.dir).filter((f) => !outsideBefore.has(f));
  const eth0After = deviceFacts(host.ns, 'eth0');
  const eth0Same = isDeepStrictEqual(eth0After, eth0Before);
  const serverAlive = host.cniServer !== undefined && isRunning(host.cniServer);
  const served = servedCalls() - servedBefore;
  const pass = invocations >= FUZZ_N && failures.length === 0 && leakedAllocs.length === 0 && leakedVeths.length === 0 && stray.length === 0 && strayLab.length === 0 && eth0Same && serverAlive;
  const codes = [...byCode].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}:${v}`).join(' ');
  recordFigure({
    id: '7b',
    case: `CNI fuzz: ${invocations} invocations (seed ${SEED})`,
    figure: `${failures.length} bad answers (stack traces, crashes, non-spec errors); ${successes} successes (${addSuccesses} ADDs, each DELed); ${leakedAllocs.length} leaked allocations; ${leakedVeths.length} leaked veths; ${stray.length + strayLab.length} stray files; half via the front-end: twill serve answered ${served} calls and ${serverAlive ? 'still runs' : 'DIED'}; ${wallS.toFixed(0)} s`,
    goal: '≥ 10,000 invocations, 0 bad answers, 0 leaks, 0 stray files',
    pass,
  });
  console.log(`fuzz: seed ${SEED}, ${invocations} invocations in ${wallS.toFixed(1)} s, results by code: ${codes}`);
  if (failures.length) console.log(`first failures:\n${failures.slice(0, 15).map((f) => `  #${f.i} ${f.note}: ${f.why}`).join('\n')}`);
  assert.deepEqual(failures.slice(0, 10), []);
  assert.deepEqual(leakedAllocs, [], 'no leaked allocation');
  assert.deepEqual(leakedVeths, [], 'no leaked veth');
  assert.ok(serverAlive, 'twill serve survived the fuzz');
  assert.deepEqual(stray, [], 'no file outside the data dirs');
  assert.deepEqual(strayLab, [], 'nothing new next to the fuzz dir');
  assert.deepEqual(eth0After, eth0Before, "the host's underlay interface is untouched (addresses, MTU, flags)");
  assert.ok(invocations >= FUZZ_N);
});


