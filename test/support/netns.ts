// Throwaway network namespaces for tests. Names are unique per process and test; tests run
// `ip`/`bridge` only as an independent oracle and for setup inside these namespaces.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Teardown } from '../../src/lab/teardown';
import { deleteNetns, netnsRemoveCommand } from '../../src/netns/netns';

export function uniqueName(tag: string): string {
  return `twt-${tag}-${process.pid.toString(36)}${randomBytes(2).toString('hex')}`.slice(0, 30);
}

export function sh(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (opts.allowFail) return '';
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr || e.message}`);
  }
}

/** `ip -n ns ...` */
export function ipn(ns: string, ...args: string[]): string {
  return sh('ip', ['-n', ns, ...args]);
}

export function ipJson<T = Record<string, unknown>>(ns: string, ...args: string[]): T[] {
  const out = sh('ip', ['-n', ns, '-j', ...args]).trim();
  return out ? (JSON.parse(out) as T[]) : [];
}

/**
 * What twill could change on a device: its addresses (family, address/length, scope), MTU and
 * flags. Not a whole `ip -j addr` snapshot: the kernel moves parts of it by itself (IPv6 DAD's
 * "tentative" on a fresh link-local address, lifetimes).
 */
export function deviceFacts(ns: string, dev: string): { mtu: number; flags: string[]; addrs: string[] } {
  const [l] = ipJson<{ mtu: number; flags: string[]; addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string }> }>(ns, 'addr', 'show', 'dev', dev);
  if (!l) throw new Error(`no device ${dev} in ${ns}`);
  return { mtu: l.mtu, flags: [...l.flags].sort(), addrs: l.addr_info.map((a) => `${a.family} ${a.local}/${a.prefixlen} ${a.scope}`).sort() };
}

export function bridgeJson<T = Record<string, unknown>>(ns: string, ...args: string[]): T[] {
  const out = sh('bridge', ['-n', ns, '-j', ...args]).trim();
  return out ? (JSON.parse(out) as T[]) : [];
}

export class Netns {
  readonly path: string;
  constructor(readonly name: string) {
    this.path = `/run/netns/${name}`;
  }
  static create(tag: string): Netns {
    const ns = new Netns(uniqueName(tag));
    sh('ip', ['netns', 'add', ns.name]);
    sh('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
    return ns;
  }
  ip(...args: string[]): string {
    return ipn(this.name, ...args);
  }
  exec(cmd: string, ...args: string[]): string {
    return sh('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }
  /**
   * `ip netns del`; when that fails and the file is still there (e.g. shadowed by a bind mount
   * of /run/netns), twill's own delete, which copes with that; throws when both fail.
   */
  delete(): void {
    try {
      sh('ip', ['netns', 'del', this.name]);
    } catch (err) {
      if (!fs.existsSync(this.path)) return;
      try {
        deleteNetns(this.name);
      } catch (e) {
        throw new AggregateError([err, e], `namespace ${this.name} could not be removed: ${(e as Error).message}`);
      }
    }
  }
}

/** Teardown steps deleting each namespace (those never created are skipped). */
export async function deleteAll(t: Teardown, namespaces: Array<Netns | undefined>): Promise<void> {
  for (const n of namespaces) if (n) await t.step(`namespace ${n.name}`, netnsRemoveCommand(n.name), () => n.delete());
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Polls `check` until it returns true or the deadline passes; returns elapsed ms or throws. */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string, intervalMs = 5): Promise<number> {
  const start = performance.now();
  for (;;) {
    let ok = false;
    try {
      ok = check();
    } catch {
      ok = false;
    }
    if (ok) return performance.now() - start;
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * For a value that settles by itself after an event (a descriptor count, a process state, a log
 * line or counter written after the answer): reads it until it equals `expected` (deep) or
 * `timeoutMs` passes, then asserts on the last reading, so a failure shows the real value.
 */
export async function eventually<T>(read: () => T, expected: T, timeoutMs: number, what: string, intervalMs = 10): Promise<void> {
  const last = await settle(read, (v) => isDeepStrictEqual(v, expected), timeoutMs, intervalMs);
  assert.deepEqual(last, expected, `${what} (still so after ${timeoutMs} ms)`);
}

/** Reads until `ok(value)` or `timeoutMs` passes; returns the last reading (assert on it). */
export async function settle<T>(read: () => T, ok: (v: T) => boolean, timeoutMs: number, intervalMs = 10): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = read();
  while (!ok(last) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, intervalMs));
    last = read();
  }
  return last;
}

/**
 * Sends `bytes` random bytes over TCP from namespace `fromNs` to a server bound at `target` in
 * namespace `toNs`; returns "<bytes>:<sha256>" as the client sent it and as the server got it.
 */
export async function tcpTransfer(fromNs: string, toNs: string, target: string, bytes: number, serverWaitMs = 20_000): Promise<{ sent: string; got: string }> {
  const { spawn } = await import('node:child_process');
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = `const net=require('net'),c=require('crypto');const h=c.createHash('sha256');let n=0;` +
    `const s=net.createServer(k=>{k.on('data',d=>{h.update(d);n+=d.length});k.on('end',()=>{process.stdout.write(n+':'+h.digest('hex'));k.end();s.close()})});` +
    `s.listen(${port},'${target}',()=>process.stderr.write('listening\\n'));setTimeout(()=>process.exit(3),60000).unref();`;
  const srv = spawn('ip', ['netns', 'exec', toNs, process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let got = '';
  let err = '';
  srv.stdout.on('data', (d) => (got += d));
  srv.stderr.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => srv.on('exit', () => resolve()));
  await waitFor(() => err.includes('listening'), 10_000, 'tcp server listening', 20);
  const client = `const net=require('net'),c=require('crypto');const b=c.randomBytes(${bytes});const sha=c.createHash('sha256').update(b).digest('hex');` +
    `const k=net.connect(${port},'${target}',()=>k.end(b));k.on('data',()=>{});k.on('close',()=>process.stdout.write(b.length+':'+sha));`;
  const cl = spawn('ip', ['netns', 'exec', fromNs, process.execPath, '-e', client], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let sent = '';
  cl.stdout.on('data', (d) => (sent += d));
  await new Promise<void>((resolve) => cl.on('exit', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, serverWaitMs)))]);
  clearTimeout(timer);
  if (srv.exitCode === null) srv.kill();
  return { sent, got };
}
