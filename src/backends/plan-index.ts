// The peers' desired entries kept incrementally: a lease event re-plans only the peers whose
// verdict it can change, not all 10,000 (issue 13). Pure: no I/O, no timers.
//
// A peer's verdict under the shared rules (src/backends/plan.ts) depends on itself, our lease,
// the underlay facts and reachability (all fixed between full rebuilds) and on the peers that
// overlap its subnet or whose plans want one of its entry keys. Those relations form a graph;
// verdicts travel only along its edges (A blocks B, so B no longer blocks C, ...). So an event
// finds the connected group around the changed peer, before and after the change, through two
// indexes — subnets by length and address, entry keys by table — and judges that group alone
// with the same judgePeers in the same order. The group's old verdicts are replaced by the new
// and only the entries that differ come out, for the reconciler's per-entry trackers.
//
// With the daemon's leases (every subnet of the configured length, one per key) a group is
// one peer plus those sharing a VTEP MAC: O(1) per event. Subnets of other lengths than the
// one looked up are scanned (O(peers of that length)); the daemon never has any.
import type { EntryChange, EntryKind, EntryMap, EntryOf, Tables } from '../dataplane/model';
import { ipInPrefix, maskOf, prefixEquals } from '../ip/ipv4';
import type { Lease } from '../subnet/lease';
import { baseTables, comparePeers, judgePeers, planContext, type PeerConflict, type PlanInput } from './plan';
import type { Backend, PeerPlan, PlanContext, PlannedEntry } from './types';

interface Peer<D> {
  id: string;
  lease: Lease<D>;
  plan: PeerPlan;
  /** The verdict: accepted (its plan's entries are in the tables) or skipped (why), or neither (our own lease). */
  verdict: 'accepted' | PeerConflict<D> | undefined;
}

/** What one event changed. */
export interface PlanDelta<D> {
  entries: EntryChange[];
  /** Peers programmed now and not before, no longer, or still (same subnet) but with another lease. Consumers apply left before joined. */
  joined: Array<Lease<D>>;
  left: Array<Lease<D>>;
  changed: Array<Lease<D>>;
  /** The leases `changed` replaced, in the same order. */
  replaced: Array<Lease<D>>;
  /** Peers of the group skipped now (with why), and those skipped before and not now (or gone). */
  skipped: Array<PeerConflict<D>>;
  unskipped: Array<Lease<D>>;
}

export class PlanIndex<D> {
  readonly tables: Tables;
  readonly paths = new Map<string, number>();
  /** Skipped peers by reason. */
  readonly reasons = new Map<string, number>();
  private readonly peers = new Map<string, Peer<D>>();
  /** len → network address → peers with that subnet. */
  private readonly bySubnet = new Map<number, Map<number, Holders<Peer<D>>>>();
  /** table → entry key → peers whose plan wants it. */
  private readonly byKey = new Map<EntryKind, Map<string, Holders<Peer<D>>>>();
  private readonly ctx: PlanContext<D>;

  constructor(private readonly backend: Backend<D>, private readonly input: PlanInput<D>) {
    this.ctx = planContext(input);
    this.tables = baseTables(backend, this.ctx);
    for (const kind of backend.tables) this.byKey.set(kind, new Map());
  }

  /** Every peer at once (a full recompute): one judgement over all, no deltas. */
  static build<D>(backend: Backend<D>, input: PlanInput<D>, leases: Iterable<[string, Lease<D>]>): PlanIndex<D> {
    const x = new PlanIndex(backend, input);
    const all: Array<Peer<D>> = [];
    for (const [id, lease] of leases) {
      const p: Peer<D> = { id, lease, plan: backend.planPeer(x.ctx, lease), verdict: undefined };
      x.peers.set(id, p);
      x.index(p);
      all.push(p);
    }
    x.judge(all);
    return x;
  }

  get size(): number {
    return this.peers.size;
  }

  /** The lease held under `id` (programmed or skipped), if any. */
  lease(id: string): Lease<D> | undefined {
    return this.peers.get(id)?.lease;
  }

  /** Every peer's id and lease (programmed or skipped). */
  *leases(): Iterable<[string, Lease<D>]> {
    for (const p of this.peers.values()) yield [p.id, p.lease];
  }

  /** Sets (a lease) or removes (null) the peer under `id` and returns what changed. */
  set(id: string, lease: Lease<D> | null): PlanDelta<D> {
    const before = this.peers.get(id);
    const seeds: Array<Peer<D>> = [];
    if (before) {
      seeds.push(...this.related(before));
      this.unindex(before);
      this.peers.delete(id);
    }
    let after: Peer<D> | undefined;
    if (lease) {
      after = { id, lease, plan: this.backend.planPeer(this.ctx, lease), verdict: undefined };
      this.peers.set(id, after);
      this.index(after);
      seeds.push(after);
    }
    const group = this.group(seeds);
    const delta: PlanDelta<D> = { entries: [], joined: [], left: [], changed: [], replaced: [], skipped: [], unskipped: [] };
    const old = new Map<Peer<D>, Peer<D>['verdict']>();
    for (const p of group) old.set(p, p.verdict);
    if (before) group.add(before);
    const removed = new Map<EntryKind, Set<string>>();
    for (const p of group) {
      if (p.verdict !== 'accepted' || !p.plan.ok) continue;
      count(this.paths, p.plan.path, -1);
      for (const e of p.plan.entries) {
        (this.tables[e.kind] as EntryMap).delete(e.key);
        let s = removed.get(e.kind);
        if (!s) removed.set(e.kind, (s = new Set()));
        s.add(e.key);
      }
    }
    if (before) group.delete(before);
    this.judge([...group]);
    // Entries: what was removed and is not back, and what is new or different.
    const prevEntry = (kind: EntryKind, key: string, prev: Array<Peer<D>>): EntryOf[EntryKind] | undefined => {
      for (const p of prev) if (p.plan.ok) for (const e of p.plan.entries) if (e.kind === kind && e.key === key) return e.entry;
      return undefined;
    };
    const wasAccepted = [...old].filter(([, v]) => v === 'accepted').map(([p]) => p);
    if (before?.verdict === 'accepted') wasAccepted.push(before);
    for (const [kind, keys] of removed) {
      const t = this.tables[kind] as EntryMap;
      for (const key of keys) {
        const now = t.get(key);
        const was = prevEntry(kind, key, wasAccepted);
        if (now === undefined || !sameEntry(now, was)) delta.entries.push({ kind, key, entry: now, was });
      }
    }
    for (const p of group) {
      if (p.verdict !== 'accepted' || !p.plan.ok) continue;
      for (const e of p.plan.entries) if (!removed.get(e.kind)?.has(e.key)) delta.entries.push({ kind: e.kind, key: e.key, entry: e.entry, was: undefined });
    }
    // Peers: joined, left, changed.
    for (const p of group) {
      const was = old.has(p) ? old.get(p) === 'accepted' : false;
      const is = p.verdict === 'accepted';
      if (p === after && before?.verdict === 'accepted') {
        const same = is && prefixEquals(before.lease.subnet, p.lease.subnet);
        if (same) {
          delta.changed.push(p.lease);
          delta.replaced.push(before.lease);
        } else delta.left.push(before.lease);
        if (is && !same) delta.joined.push(p.lease);
      } else if (is && !was) delta.joined.push(p.lease);
      else if (!is && was) delta.left.push(p.lease);
    }
    if (before?.verdict === 'accepted' && !after) delta.left.push(before.lease);
    for (const p of group) {
      if (isConflict(p.verdict)) delta.skipped.push(p.verdict);
      else if (isConflict(old.get(p))) delta.unskipped.push(p.lease);
    }
    if (before && isConflict(before.verdict)) {
      count(this.reasons, before.verdict.reason, -1);
      if (!after || !isConflict(after.verdict) || !prefixEquals(before.lease.subnet, after.lease.subnet)) delta.unskipped.push(before.lease);
    }
    return delta;
  }

  /**
   * The first way this index differs from a full build over the same leases with `backend`
   * and `input` (undefined: none). Every peer is planned again and compared, its plan
   * dropped at once, and all are judged afresh into new tables that hold the kept entries:
   * the periodic safety net under the per-event path without a second index (issue 13: at
   * 10,000 peers a rebuild made ~30 MB of garbage, and rebuilt everything downstream).
   */
  verify(backend: Backend<D>, input: PlanInput<D>): string | undefined {
    const ctx = planContext(input);
    const all = [...this.peers.values()].sort(byId);
    for (const p of all) if (!samePlan(p.plan, backend.planPeer(ctx, p.lease))) return `plan of ${p.id}`;
    const tables = baseTables(backend, ctx);
    const verdicts = new Map<Peer<D>, Peer<D>['verdict']>();
    const paths = new Map<string, number>();
    const reasons = new Map<string, number>();
    judgePeers(tables, input.own, all, (p) => p.lease, (p) => p.plan, {
      accepted: (p, plan) => {
        verdicts.set(p, 'accepted');
        count(paths, plan.path, 1);
      },
      skipped: (p, c) => {
        verdicts.set(p, c);
        count(reasons, c.reason, 1);
      },
    });
    for (const p of all) if (!sameVerdict(p.verdict, verdicts.get(p))) return `verdict on ${p.id}`;
    if (!sameCounts(paths, this.paths)) return 'paths';
    if (!sameCounts(reasons, this.reasons)) return 'skip reasons';
    for (const kind of Object.keys(tables) as EntryKind[]) {
      const fresh = tables[kind] as EntryMap;
      const kept = this.tables[kind] as EntryMap | undefined;
      if (!kept || kept.size !== fresh.size) return `${kind} table size`;
      for (const [key, e] of fresh) if (!sameEntry(kept.get(key), e)) return `${kind} ${key}`;
    }
    if (Object.keys(this.tables).length !== Object.keys(tables).length) return 'tables';
    return undefined;
  }

  /** Skipped peers in judging order, as planPeers lists them. */
  conflicts(): Array<PeerConflict<D>> {
    const out: Array<{ c: PeerConflict<D>; id: string }> = [];
    for (const p of this.peers.values()) if (isConflict(p.verdict)) out.push({ c: p.verdict, id: p.id });
    return out.sort((a, b) => comparePeers(a.c.lease, b.c.lease) || byId(a, b)).map((x) => x.c);
  }

  /** The leases of programmed peers. */
  *programmed(): Iterable<Lease<D>> {
    for (const p of this.peers.values()) if (p.verdict === 'accepted') yield p.lease;
  }

  /** The shared rules over `group`, in the order a full judgement visits them (ties by id). */
  private judge(group: Array<Peer<D>>): void {
    for (const p of group) {
      if (isConflict(p.verdict)) count(this.reasons, p.verdict.reason, -1);
      p.verdict = undefined;
    }
    judgePeers(this.tables, this.input.own, group.sort(byId), (p) => p.lease, (p) => p.plan, {
      accepted: (p, plan) => {
        p.verdict = 'accepted';
        count(this.paths, plan.path, 1);
      },
      skipped: (p, c) => {
        p.verdict = c;
        count(this.reasons, c.reason, 1);
      },
    });
  }

  /** The connected group around the seeds: closed under "overlaps" and "wants an entry key of". */
  private group(seeds: Array<Peer<D>>): Set<Peer<D>> {
    const seen = new Set<Peer<D>>();
    const todo = seeds.filter((p) => this.peers.get(p.id) === p);
    for (const p of todo) seen.add(p);
    while (todo.length > 0) {
      const p = todo.pop()!;
      for (const q of this.related(p)) {
        if (seen.has(q)) continue;
        seen.add(q);
        todo.push(q);
      }
    }
    return seen;
  }

  /** Indexed peers overlapping p's subnet or wanting one of its entry keys (p itself included if indexed). */
  private related(p: Peer<D>): Array<Peer<D>> {
    const out: Array<Peer<D>> = [];
    const s = p.lease.subnet;
    for (const [len, byIp] of this.bySubnet) {
      if (len <= s.len) add(out, byIp.get((s.ip & maskOf(len)) >>> 0));
      else for (const [ip, ps] of byIp) if (ipInPrefix(ip, s)) add(out, ps);
    }
    for (const e of entriesOf(p)) add(out, this.byKey.get(e.kind)?.get(e.key));
    return out;
  }

  private index(p: Peer<D>): void {
    const { ip, len } = p.lease.subnet;
    let byIp = this.bySubnet.get(len);
    if (!byIp) this.bySubnet.set(len, (byIp = new Map()));
    push(byIp, ip, p);
    for (const e of entriesOf(p)) push(this.byKey.get(e.kind)!, e.key, p);
  }

  private unindex(p: Peer<D>): void {
    const { ip, len } = p.lease.subnet;
    const byIp = this.bySubnet.get(len)!;
    pull(byIp, ip, p);
    if (byIp.size === 0) this.bySubnet.delete(len);
    for (const e of entriesOf(p)) pull(this.byKey.get(e.kind)!, e.key, p);
  }
}

const NONE: PlannedEntry[] = [];
function entriesOf(p: { plan: PeerPlan }): PlannedEntry[] {
  return p.plan.ok ? p.plan.entries : NONE;
}

function isConflict<D>(v: Peer<D>['verdict']): v is PeerConflict<D> {
  return v !== undefined && v !== 'accepted';
}

function count(m: Map<string, number>, k: string, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n === 0) m.delete(k);
  else m.set(k, n);
}

const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Who holds an index key: nearly always one peer, so not an array each (10,000s of them). */
type Holders<V> = V | V[];

function add<V>(out: V[], h: Holders<V> | undefined): void {
  if (h === undefined) return;
  if (Array.isArray(h)) out.push(...h);
  else out.push(h);
}

function push<K, V extends object>(m: Map<K, Holders<V>>, k: K, v: V): void {
  const h = m.get(k);
  if (h === undefined) m.set(k, v);
  else if (Array.isArray(h)) h.push(v);
  else m.set(k, [h, v]);
}

function pull<K, V extends object>(m: Map<K, Holders<V>>, k: K, v: V): void {
  const h = m.get(k);
  if (h === undefined) return;
  if (!Array.isArray(h)) {
    if (h === v) m.delete(k);
    return;
  }
  const i = h.indexOf(v);
  if (i >= 0) h.splice(i, 1);
  if (h.length === 1) m.set(k, h[0]!);
  else if (h.length === 0) m.delete(k);
}

function samePlan(a: PeerPlan, b: PeerPlan): boolean {
  if (!a.ok || !b.ok) return !a.ok && !b.ok && a.reason === b.reason && a.detail === b.detail;
  if (a.path !== b.path || a.entries.length !== b.entries.length) return false;
  return a.entries.every((e, i) => {
    const f = b.entries[i]!;
    return e.kind === f.kind && e.key === f.key && e.collision === f.collision && sameEntry(e.entry, f.entry);
  });
}

function sameVerdict<D>(a: Peer<D>['verdict'], b: Peer<D>['verdict']): boolean {
  if (!isConflict(a) || !isConflict(b)) return a === b;
  return a.reason === b.reason && a.detail === b.detail && a.lease === b.lease;
}

function sameCounts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, n] of a) if (b.get(k) !== n) return false;
  return true;
}

/** Entries are flat records of strings, numbers and booleans. */
export function sameEntry(a: object | undefined, b: object | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => (a as Record<string, unknown>)[k] === (b as Record<string, unknown>)[k]);
}
