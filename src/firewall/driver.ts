// Converges twill's nftables table on the desired FirewallSpec, like the dataplane reconciler
// does for routes: desired state in, the kernel compared and repaired, drift counted.
//
// - Writes are synchronous and happen in setDesired: a change of peers only adds or deletes
//   set members (one small nf_tables transaction over netlink, set-elements.ts); any other
//   change, or a refused member change, replaces the whole table in one transaction (nft.ts).
// - Checks are asynchronous: the ruleset is listed as JSON and judged (listing.ts) — table
//   missing, peer set different from desired, or anything else in our table different from
//   what the kernel showed right after our last replace → replace again and emit 'drift'.
//   That fingerprint is listed synchronously right after the replace: taken at the next check
//   instead, an edit made in between (seen: a chain deleted ~50 ms after a repair) would be
//   taken for the truth and never repaired. The chains the spec implies are checked as well.
//   A check runs on every foreign nf_tables transaction (events.ts; ~10-50 ms after
//   `nft flush ruleset` or iptables-restore) and every `checkIntervalMs` as a net.
// - Full and terse checks. The peer set holds every peer's address: at 10,000 peers a full
//   listing is ~140 KB of JSON (nft ~35-75 ms, parsed into a 10,000-member Set each time).
//   Only a check that follows a foreign transaction (element deletions by `nft delete element`
//   are one: every commit ends with a NEWGEN event), an explicit check(), a retry, and every
//   FULL_EVERY-th periodic one list the members; the other periodic ones list terse (`nft -t`,
//   ~0.5 KB, no members) and judge all else: table, chains, the set's presence, the rules'
//   fingerprint, foreign drops. Members changed while events are lost (socket closed, or a
//   PID we took for ours) are thus repaired within FULL_EVERY intervals instead of one.
// - A check whose listing raced one of our own writes is discarded and rerun.
// - Other tables' forward base chains with policy drop are warned about once each.
// - A failed write keeps the table dirty and is retried; it never stops the daemon.
import { EventEmitter } from 'node:events';
import type { Logger } from '../observe/log';
import { NftEventSocket } from './events';
import { forwardDropAdvice, parseRuleset, type RulesetFacts } from './listing';
import type { Nft } from './nft';
import { PEER_SET, peerChanges, renderReplace, sameShape, TABLE_FAMILY, TABLE_NAME, type FirewallSpec } from './rules';
import { SetElementsSocket } from './set-elements';
import { errorCode } from '../base/twill-error';

const RETRY_MS = 2000;
const EVENT_DEBOUNCE_MS = 20;
const NO_PEERS: ReadonlySet<string> = new Set();
/** Every how many periodic checks one lists the peer set's members (10 s interval: once a minute). */
export const FULL_EVERY = 6;

export interface FirewallDriverEvents {
  drift: [reason: string];
  failed: [err: Error];
}

export interface FirewallDriverOptions {
  checkIntervalMs: number;
  /** Listen to nf_tables events (default true; off in tests that drive checks by hand). */
  events?: boolean;
}

export class FirewallDriver extends EventEmitter<FirewallDriverEvents> {
  private desired: FirewallSpec | undefined;
  /** What the kernel holds as far as we know; undefined: unknown or dirty. */
  private applied: FirewallSpec | undefined;
  /** Our table as listed right after the last replace; undefined until the next check. */
  private fingerprint: string | undefined;
  private generation = 0;
  private checking = false;
  private checkAgain = false;
  /** The next check lists the set's members (see the note above). */
  private fullDue = true;
  private ticks = 0;
  private checkTimer: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private events: NftEventSocket | undefined;
  private setSocket: SetElementsSocket | undefined;
  private readonly warned = new Set<string>();
  private lastFailure = '';
  private lastCounter = 0;
  private stopped = false;
  private lastListFailure = '';
  /** Foreign VXLAN datagrams dropped since this driver started (kernel counter, across replaces). */
  foreignDropped = 0;

  constructor(
    private readonly nft: Nft,
    private readonly log: Logger,
    private readonly opts: FirewallDriverOptions,
  ) {
    super();
  }

  start(): void {
    if (this.opts.events !== false) {
      try {
        this.events = new NftEventSocket(this.nft.netns);
        this.events.on('change', (pid) => {
          // Our nft runs, and our own set changes over netlink (this process), are not drift.
          if (!this.nft.isOwnPid(pid) && pid !== process.pid) this.scheduleCheck(EVENT_DEBOUNCE_MS, true);
        });
        this.events.on('error', (err) => this.log.warn({ err: err.message }, 'nf_tables event socket error; periodic checks continue'));
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'cannot listen to nf_tables events; drift is found by periodic checks only');
      }
    }
    this.interval = setInterval(() => this.scheduleCheck(0, ++this.ticks % FULL_EVERY === 0), this.opts.checkIntervalMs);
    this.interval.unref();
  }

  /** Idempotent: a second call must not close the set socket's fd again (it may be reused by then). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.interval) clearInterval(this.interval);
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.events?.close();
    this.setSocket?.close();
  }

  /** Synchronous: when it returns, the kernel holds `spec` (or the failure is counted and retried). */
  setDesired(spec: FirewallSpec): void {
    this.desired = spec;
    this.converge();
  }

  /**
   * The desired spec's VXLAN peer set was changed in place by its owner (one lease event):
   * `added`/`removed` go to the kernel as set elements, O(change), without comparing the sets.
   */
  peersChanged(added: readonly string[], removed: readonly string[]): void {
    const d = this.desired;
    if (!d?.vxlan || this.stopped || added.length + removed.length === 0) return;
    if (this.applied !== d) {
      this.converge();
      return;
    }
    try {
      this.applyElements(added, removed);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'peer set change refused; replacing the table');
      this.applied = undefined;
      this.converge();
    }
  }

  private applyElements(added: readonly string[], removed: readonly string[]): void {
    this.setSocket ??= SetElementsSocket.open(this.nft.netns);
    this.setSocket.apply(TABLE_NAME, PEER_SET, [
      { op: 'add', addrs: added },
      { op: 'delete', addrs: removed },
    ]);
    this.generation++;
  }

  private converge(): void {
    const d = this.desired;
    if (!d || this.stopped || this.applied === d) return;
    const a = this.applied;
    if (a && sameShape(a, d)) {
      try {
        const c = peerChanges(a.vxlan?.peers ?? NO_PEERS, d.vxlan?.peers ?? NO_PEERS);
        if (c.added.length + c.removed.length > 0) this.applyElements(c.added, c.removed);
        this.applied = d;
        return;
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'peer set change refused; replacing the table');
      }
    }
    try {
      this.nft.apply(renderReplace(d));
      this.generation++;
      this.applied = d;
      this.fingerprint = this.fingerprintNow();
      this.lastCounter = 0; // a new table's counter starts at 0
      this.lastFailure = '';
      if (this.fingerprint === undefined) this.scheduleCheck(0, true);
    } catch (err) {
      this.applied = undefined;
      const e = err as Error;
      this.emit('failed', e);
      // Said once per distinct failure (a log de-duplication, not a decision).
      const said = String(e);
      if (said !== this.lastFailure) this.log.error({ err: e.message, code: errorCode(e) }, 'cannot write the nftables table; retrying');
      this.lastFailure = said;
      this.scheduleCheck(RETRY_MS, true);
    }
  }

  /** Our table as the kernel shows it now; undefined if it cannot be listed (the next check takes it). */
  private fingerprintNow(): string | undefined {
    try {
      const facts = parseRuleset(this.nft.listTableSync(TABLE_FAMILY, TABLE_NAME));
      return facts.present ? facts.fingerprint : undefined;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cannot list our table right after writing it');
      return undefined;
    }
  }

  /** Runs a check after `delayMs` (an earlier pending one wins; `full` is kept either way). */
  scheduleCheck(delayMs: number, full: boolean): void {
    if (this.stopped) return;
    if (full) this.fullDue = true;
    if (this.checkTimer) return;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = undefined;
      void this.check(false);
    }, delayMs);
    this.checkTimer.unref();
  }

  /**
   * Lists the ruleset, repairs drift; serialised (a request meanwhile runs once more after).
   * `full` (default): with the peer set's members; otherwise only if one is due.
   */
  async check(full = true): Promise<void> {
    if (full) this.fullDue = true;
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = true;
    try {
      do {
        this.checkAgain = false;
        await this.checkOnce();
      } while (this.checkAgain && !this.stopped);
    } finally {
      this.checking = false;
    }
  }

  private async checkOnce(): Promise<void> {
    const gen = this.generation;
    const full = this.fullDue;
    this.fullDue = false;
    let text: string;
    try {
      text = await this.nft.listRuleset(!full);
    } catch (err) {
      this.fullDue ||= full;
      const msg = (err as Error).message;
      if (msg !== this.lastListFailure) this.log.warn({ err: msg }, 'cannot list the nftables ruleset; next check later');
      this.lastListFailure = msg;
      return;
    }
    this.lastListFailure = '';
    if (this.stopped) return;
    if (gen !== this.generation) {
      this.checkAgain = true; // listed while we wrote: judge a fresh listing
      this.fullDue ||= full;
      return;
    }
    let facts: RulesetFacts;
    try {
      facts = parseRuleset(text, full);
    } catch (err) {
      this.fullDue ||= full;
      this.log.warn({ err: (err as Error).message }, 'unreadable nftables listing; next check later');
      return;
    }
    this.countForeign(facts.foreignDropped ?? 0);
    const d = this.desired;
    if (!d) return;
    for (const fd of facts.forwardDrops) {
      const key = `${fd.family}/${fd.table}/${fd.chain}`;
      if (this.warned.has(key)) continue;
      this.warned.add(key);
      this.log.warn({ family: fd.family, table: fd.table, chain: fd.chain }, forwardDropAdvice(fd, d.network));
    }
    if (!this.applied) return this.converge();
    const reason = driftReason(facts, d, this.fingerprint);
    if (reason) {
      this.log.info({ reason }, 'nftables table drifted; replacing it');
      this.emit('drift', reason);
      this.applied = undefined;
      this.converge();
    } else if (this.fingerprint === undefined) {
      this.fingerprint = facts.fingerprint;
    }
  }

  private countForeign(value: number): void {
    // The kernel counter restarts at 0 whenever the table is replaced.
    this.foreignDropped += value >= this.lastCounter ? value - this.lastCounter : value;
    this.lastCounter = value;
  }
}

/** Why the kernel's table is not the desired one, or null; the set's members only if listed. Pure. */
export function driftReason(facts: RulesetFacts, d: FirewallSpec, fingerprint: string | undefined): string | null {
  if (!facts.present) return 'table missing';
  const want = expectedChains(d);
  if (facts.chains.length !== want.length || want.some((c, i) => facts.chains[i] !== c)) return 'chains differ';
  if (d.vxlan) {
    if (!facts.peerSet) return 'peer set missing';
    const have = facts.peers; // null: a terse listing, members not judged
    if (have && (have.size !== d.vxlan.peers.size || [...d.vxlan.peers].some((p) => !have.has(p)))) return 'peer set differs';
  }
  if (fingerprint !== undefined && facts.fingerprint !== fingerprint) return 'rules differ';
  return null;
}

/** The chains a spec's table has, sorted. Pure. */
export function expectedChains(d: FirewallSpec): string[] {
  return [...(d.vxlan ? ['vxlan_in'] : []), 'forward', ...(d.ipMasq ? ['postrouting'] : [])].sort();
}
