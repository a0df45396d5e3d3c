// Bodies of test/netns/netns-iproute2.test.ts. Run in-process (the real /run/netns) or as a
// script inside a private mount namespace (support/private-run.ts), where it prints JSON lines.
//   churn <tag> <n>   creates and deletes <n> namespaces through twill while a shell loop runs
//                     `ip netns add/del` of unrelated names beside it
//   interop <tag>     twill first on a plain /run/netns, then each side deletes the other's
//   shadowed <tag>    a namespace mounted the way an older twill did (on a plain /run/netns),
//                     shadowed by a foreign `ip netns add`, then deleted through twill
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createNetns, deleteNetns, inNetns, netnsPath, NETNS_DIR } from '../../src/netns/netns';
import { announceNamespace } from './private-run';

export interface ChurnResult {
  created: number;
  failures: string[];
  ipRounds: number;
  ipFailures: string[];
  /** Namespace files and nsfs mounts with the tag, after everything was deleted. */
  leftFiles: string[];
  leftMounts: string[];
  /** Whether /run/netns was a mount point before, and is a shared one after. */
  wasMountPoint: boolean;
  sharedAfter: boolean;
}

/**
 * The mount a path is on, by the kernel's own word (mnt_id of an open descriptor): mountinfo
 * also lists copies covered by a later mount, which by path alone look the same.
 */
function mountOf(p: string): { id: string; line: string } {
  const fd = fs.openSync(p, 'r');
  try {
    const id = /^mnt_id:\s*(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
    return { id, line: fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[0] === id) ?? '' };
  } finally {
    fs.closeSync(fd);
  }
}

function netnsMount(): { mountPoint: boolean; shared: boolean } {
  const m = mountOf(NETNS_DIR);
  return { mountPoint: m.id !== mountOf(path.dirname(NETNS_DIR)).id, shared: / shared:\d+/.test(m.line) };
}

export function leftovers(tag: string): { leftFiles: string[]; leftMounts: string[] } {
  const leftFiles = fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR).filter((f) => f.includes(tag)) : [];
  const leftMounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(tag));
  return { leftFiles, leftMounts };
}

const ownNetns = (): string => fs.readlinkSync('/proc/thread-self/ns/net');

export async function churn(tag: string, n: number): Promise<ChurnResult> {
  const wasMountPoint = netnsMount().mountPoint;
  const loop = spawn('sh', ['-c', `i=0; while :; do n=${tag}-ip$i; if ip netns add $n && ip netns del $n; then echo ok; else echo "fail $n"; fi; i=$((i+1)); done`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  loop.stdout.on('data', (d: Buffer) => (out += d));
  loop.stderr.on('data', (d: Buffer) => (err += d));
  const failures: string[] = [];
  let created = 0;
  const mine = ownNetns();
  for (let i = 0; i < n; i++) {
    const name = `${tag}-tw${i}`;
    try {
      createNetns(name);
      created++;
      const inside = inNetns(netnsPath(name), ownNetns);
      if (inside === mine) failures.push(`${name}: not a namespace of its own`);
      if (!deleteNetns(name)) failures.push(`${name}: delete found nothing`);
      if (fs.existsSync(netnsPath(name))) failures.push(`${name}: still there after delete`);
    } catch (e) {
      failures.push(`${name}: ${(e as Error).message}`);
    }
    // Let the loop's output in, and give it room on a busy machine.
    if (i % 10 === 9) await new Promise((r) => setImmediate(r));
  }
  const exited = new Promise((r) => loop.on('close', r));
  loop.kill('SIGTERM');
  await exited;
  // A round cut off by SIGTERM may have left its namespace; that is the loop's, not ours.
  for (const f of fs.readdirSync(NETNS_DIR).filter((f) => f.startsWith(`${tag}-ip`))) spawnSync('ip', ['netns', 'del', f]);
  const lines = out.split('\n').filter(Boolean);
  return {
    created,
    failures,
    ipRounds: lines.length,
    ipFailures: [...lines.filter((l) => l.startsWith('fail')), ...err.split('\n').filter(Boolean)],
    ...leftovers(tag),
    wasMountPoint,
    sharedAfter: netnsMount().mountPoint && netnsMount().shared,
  };
}

/** An older twill's namespace (nsfs mounted on a plain /run/netns), shadowed by `ip netns add`. */
export function shadowed(tag: string): Record<string, unknown> {
  const old = `${tag}-old`;
  const foreign = `${tag}-foreign`;
  const wasMountPoint = netnsMount().mountPoint;
  fs.writeFileSync(netnsPath(old), '');
  const made = spawnSync('unshare', [`--net=${netnsPath(old)}`, 'true'], { encoding: 'utf8' });
  const add = spawnSync('ip', ['netns', 'add', foreign], { encoding: 'utf8' });
  // What `ip netns del` (and the old twill) ran into.
  const ipDel = spawnSync('ip', ['netns', 'del', old], { encoding: 'utf8' });
  let deleted: unknown;
  try {
    deleted = deleteNetns(old);
  } catch (e) {
    deleted = `${(e as Error).message}`;
  }
  const after = leftovers(old);
  const foreignThere = fs.existsSync(netnsPath(foreign));
  spawnSync('ip', ['netns', 'del', foreign]);
  return { wasMountPoint, made: made.status, foreignAdd: add.status, ipDelStatus: ipDel.status, ipDelError: ipDel.stderr.trim(), deleted, ...after, foreignThere };
}

/**
 * On a plain /run/netns: twill creates first (and must make the directory a shared mount point
 * as iproute2 would), then each side deletes the other's namespace.
 */
export function interop(tag: string): Record<string, unknown> {
  const wasMountPoint = netnsMount().mountPoint;
  const ours = `${tag}-tw`;
  const theirs = `${tag}-ip`;
  createNetns(ours);
  const afterCreate = netnsMount();
  const add = spawnSync('ip', ['netns', 'add', theirs], { encoding: 'utf8' });
  // iproute2 deletes twill's namespace, twill deletes iproute2's: neither shadows the other.
  const ipDel = spawnSync('ip', ['netns', 'del', ours], { encoding: 'utf8' });
  let twDel: unknown;
  try {
    twDel = deleteNetns(theirs);
  } catch (e) {
    twDel = (e as Error).message;
  }
  return { wasMountPoint, afterCreate, ipAdd: add.status, ipDel: ipDel.status, ipDelError: ipDel.stderr.trim(), twDel, ...leftovers(tag) };
}

if (require.main === module) {
  const [mode, tag, n] = process.argv.slice(2);
  announceNamespace();
  const print = (r: unknown): void => void process.stdout.write(`${JSON.stringify(r)}\n`);
  if (mode === 'churn') void churn(tag!, Number(n)).then(print);
  else if (mode === 'shadowed') print(shadowed(tag!));
  else if (mode === 'interop') print(interop(tag!));
  else throw new Error(`unknown mode ${mode}`);
}
