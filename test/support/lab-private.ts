// Bodies of test/e2e/lab-teardown.test.ts, run as scripts in a private mount namespace with its
// own /run (support/private-run.ts), through the `twill-lab` CLI as a person runs it. Prints one
// JSON line of findings.
//   foreign <name>   up on a plain /run/netns, a foreign `ip netns add`, then down
//   failing <name>   up, then a pod whose namespace path cannot be removed (a directory), then
//                    down (must stop everything and report it), then down again once fixed
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LabState } from '../../src/lab/lab';
import { isRunning, type SpawnedProc } from '../../src/lab/procs';
import { NETNS_DIR } from '../../src/netns/netns';
import { announceNamespace } from './private-run';
import { leftovers } from './netns-churn';

const LAB_CLI = path.resolve(__dirname, '../../src/cmd/twill-lab.js');

function lab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  const r = spawnSync(process.execPath, [LAB_CLI, ...args], { encoding: 'utf8', env, timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function procs(state: LabState): SpawnedProc[] {
  return [state.etcd, ...state.hosts.flatMap((h) => [h.daemon, h.cniServer])].filter((p): p is SpawnedProc => p !== undefined);
}

function labState(name: string): LabState {
  return JSON.parse(fs.readFileSync(`/run/twill-lab/${name}/lab.json`, 'utf8')) as LabState;
}

function isMountPoint(p: string): boolean {
  const id = (q: string): string => {
    const fd = fs.openSync(q, 'r');
    try {
      return /^mnt_id:\s*(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
    } finally {
      fs.closeSync(fd);
    }
  };
  return id(p) !== id(path.dirname(p));
}

/** What is left of lab `name`: namespace files, nsfs mounts, running recorded processes. */
function left(name: string, state: LabState): Record<string, unknown> {
  const { leftFiles, leftMounts } = leftovers(`twl-${name}-`);
  return { leftFiles, leftMounts, running: procs(state).filter(isRunning).map((p) => p.pid) };
}

function foreign(name: string): Record<string, unknown> {
  const wasMountPoint = isMountPoint(NETNS_DIR);
  const up = lab('up', '--name', name, '--hosts', '2', '--pods', '1');
  const state = labState(name);
  const other = `twt-foreign-${name}`;
  const add = spawnSync('ip', ['netns', 'add', other], { encoding: 'utf8' });
  const down = lab('down', '--name', name);
  const out = { wasMountPoint, up: up.code, upErr: up.stderr.slice(-2000), recorded: procs(state).length, namespaces: 1 + state.hosts.length + state.pods.length, foreignAdd: add.status, down: down.code, downOut: down.stdout + down.stderr, labDir: fs.existsSync(`/run/twill-lab/${name}`), ...left(name, state) };
  spawnSync('ip', ['netns', 'del', other]);
  return out;
}

function failing(name: string): Record<string, unknown> {
  const up = lab('up', '--name', name, '--hosts', '1', '--pods', '1');
  const state = labState(name);
  // A pod whose namespace path is a non-empty directory: unlink fails (EISDIR), as any
  // namespace that cannot be removed would.
  const bogus = `twl-${name}-bogus`;
  fs.mkdirSync(path.join(NETNS_DIR, bogus, 'inside'), { recursive: true });
  state.pods.push({ name: 'bogus', host: state.hosts[0]!.name, ns: bogus, containerId: `bogus-${name}`, ifname: 'eth0' });
  fs.writeFileSync(`/run/twill-lab/${name}/lab.json`, JSON.stringify(state));
  const down = lab('down', '--name', name);
  const afterFailed = left(name, state);
  const stateKept = fs.existsSync(`/run/twill-lab/${name}/lab.json`);
  fs.rmSync(path.join(NETNS_DIR, bogus), { recursive: true });
  const again = lab('down', '--name', name);
  return { up: up.code, upErr: up.stderr.slice(-2000), recorded: procs(state).length, down: down.code, downErr: down.stderr, afterFailed, stateKept, again: again.code, againOut: again.stdout + again.stderr, labDir: fs.existsSync(`/run/twill-lab/${name}`), ...left(name, state) };
}

if (require.main === module) {
  const [mode, name] = process.argv.slice(2);
  announceNamespace();
  const r = mode === 'foreign' ? foreign(name!) : mode === 'failing' ? failing(name!) : undefined;
  if (!r) throw new Error(`unknown mode ${mode}`);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
