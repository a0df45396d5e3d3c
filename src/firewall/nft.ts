// The one place twill runs the `nft` tool (Debian package `nftables`): a named exception to
// "the system boundary is netlink" (DESIGN.md).
//
// Why the tool and not nf_tables netlink: a ruleset is a batch of NFT_MSG_NEW* messages whose
// expressions (payload offsets, registers, fib flags, NAT ranges, set lookups) are compiled
// by libnftables; hand-encoding that is a compiler's worth of code for half a dozen rules.
// kube-proxy and flannel drive the same tool through knftables for the same reason. What we
// keep from that design: the input goes to `nft -f -` on stdin, so one run is one kernel
// transaction (all of it applies or none), and listings are read as JSON (`-j`), never
// scraped from text. The events that tell us someone else changed the ruleset do come over
// netlink (events.ts): reading them needs no compiler.
//
// Writes are synchronous (spawnSync, ~5-20 ms), like the set member changes that go over
// netlink instead (set-elements.ts, on every peer join and leave): a peer's address is in the
// VXLAN filter's set before the daemon hands the peer's routes to the reconciler, so its
// traffic is accepted no later than it can arrive. Listings (the drift check) are asynchronous.
//
// With `netns`, every nft is forked while this thread is in that namespace (the child lives
// there): tests drive a "host" from outside. The daemon runs inside its namespace, unset.
//
// Edge cases that bit: a PATH without /usr/sbin (non-root shells, some service managers) does
// not find nft, so the usual places are tried first.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inNetns } from '../netns/netns';
import { TwillError } from '../base/twill-error';

const CANDIDATES = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'];
const TIMEOUT_MS = 10_000;
const MAX_OUTPUT = 64 * 1024 * 1024;
const REMEMBERED_PIDS = 64;

export class NftError extends TwillError<'ERR_NFT'> {
  /** 'missing': no nft binary; 'failed': nft ran and refused; 'timeout'. */
  readonly reason: 'missing' | 'failed' | 'timeout';
  readonly stderr: string;
  constructor(reason: NftError['reason'], message: string, stderr = '', options?: { cause?: unknown }) {
    super('ERR_NFT', message, options);
    this.name = 'NftError';
    this.reason = reason;
    this.stderr = stderr;
  }
}

/** The nft executable: the usual places first, then PATH; null when there is none. */
export function locateNft(env: NodeJS.ProcessEnv = process.env, usual: readonly string[] = CANDIDATES): string | null {
  const dirs = (env['PATH'] ?? '').split(':').filter(Boolean);
  for (const c of [...usual, ...dirs.map((d) => path.join(d, 'nft'))]) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return null;
}

export function findNft(): string {
  return locateNft() ?? 'nft';
}

export class Nft {
  readonly bin: string;
  /** PIDs of our recent nft runs: their transactions are ours, not drift (events.ts). */
  private readonly pids: number[] = [];

  constructor(
    readonly netns: string | undefined = undefined,
    bin = findNft(),
  ) {
    this.bin = bin;
  }

  private inNs<T>(fn: () => T): T {
    return this.netns ? inNetns(this.netns, fn) : fn();
  }

  isOwnPid(pid: number): boolean {
    return this.pids.includes(pid);
  }

  private remember(pid: number | undefined): void {
    if (pid === undefined) return;
    this.pids.push(pid);
    if (this.pids.length > REMEMBERED_PIDS) this.pids.shift();
  }

  /** Runs `script` as one transaction (`nft -f -`). Throws NftError. */
  apply(script: string): void {
    const r = this.inNs(() => spawnSync(this.bin, ['-f', '-'], { input: script, encoding: 'utf8', timeout: TIMEOUT_MS, stdio: ['pipe', 'pipe', 'pipe'] }));
    this.remember(r.pid);
    if (r.error) throw this.spawnError(r.error);
    if (r.signal) throw new NftError('timeout', `nft -f - was killed (${r.signal})`, r.stderr);
    if (r.status !== 0) throw new NftError('failed', `nft -f - exited ${r.status}: ${firstLine(r.stderr)}`, r.stderr);
  }

  /**
   * `nft -t -j list table <family> <name>`, synchronously: right after a write, before anyone
   * else can. Terse: without set members (10,000 peers cost nothing here).
   */
  listTableSync(family: string, name: string): string {
    const r = this.inNs(() => spawnSync(this.bin, ['-t', '-j', 'list', 'table', family, name], { encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: MAX_OUTPUT }));
    this.remember(r.pid);
    if (r.error) throw this.spawnError(r.error);
    if (r.status !== 0) throw new NftError('failed', `nft -j list table ${family} ${name} exited ${r.status}: ${firstLine(r.stderr)}`, r.stderr);
    return r.stdout;
  }

  /**
   * `nft -j list ruleset`: the whole ruleset as JSON text; `terse` (`-t`): without any set's
   * members (10,000 peers: ~140 KB of JSON full, ~0.5 KB terse).
   */
  listRuleset(terse = false): Promise<string> {
    const args = terse ? ['-t', '-j', 'list', 'ruleset'] : ['-j', 'list', 'ruleset'];
    const what = `nft ${args.join(' ')}`;
    return new Promise((resolve, reject) => {
      const child = this.inNs(() => execFile(this.bin, args, { encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: MAX_OUTPUT }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        if (e.code === 'ENOENT' || e.code === 'EACCES') return reject(this.spawnError(e));
        if (e.killed) return reject(new NftError('timeout', `${what} timed out`, stderr));
        reject(new NftError('failed', `${what} failed: ${firstLine(stderr)}`, stderr, { cause: err }));
      }));
      this.remember(child.pid);
    });
  }

  private spawnError(err: NodeJS.ErrnoException): NftError {
    if (err.code === 'ENOENT' || err.code === 'EACCES') {
      return new NftError('missing', `cannot run ${this.bin} (${err.code}): install the nftables package (apt-get install nftables)`, '', { cause: err });
    }
    if (err.code === 'ETIMEDOUT') return new NftError('timeout', `${this.bin} did not finish within ${TIMEOUT_MS} ms`, '', { cause: err });
    return new NftError('failed', `${this.bin}: ${err.message}`, '', { cause: err });
  }
}

function firstLine(s: string): string {
  return (s ?? '').trim().split('\n')[0] ?? '';
}
