// Desired state as a pure function of (backend, network config, own lease, peer leases,
// underlay facts). The rules every backend shares live here: our own lease is never a peer;
// a peer overlapping our subnet, an accepted peer's subnet or using our PublicIP is left out;
// a peer whose entries would take a key an accepted peer holds (two leases with one VTEP MAC)
// is left out. Everything else — which entries, on which path — is the backend's per-peer
// plan, so one peer's entries can be recomputed on their own.
import type { NetworkConfig } from '../config/network';
import type { DesiredState, DeviceBase, EntryKind, EntryMap, Tables } from '../dataplane/model';
import { prefixesOverlap, type Prefix4 } from '../ip/ipv4';
import type { Lease } from '../subnet/lease';
import type { Backend, HostIdentity, PeerPlan, PlanContext, PlannedEntry, Reach, UnderlayFacts } from './types';

export interface PeerConflict<D = unknown> {
  lease: Lease<D>;
  /** 'overlaps-own', 'overlaps-peer', 'same-public-ip', a collision ('duplicate-vtep-mac') or the backend's ('not-directly-reachable'). */
  reason: string;
  detail: string;
}

export interface PeerEntries<D = unknown> {
  tables: Tables;
  conflicts: Array<PeerConflict<D>>;
  /** Programmed peers by path ("vxlan", "direct"). */
  paths: Map<string, number>;
}

/** A lease naming our subnet and PublicIP is our own (an earlier write of it), never a peer. */
export function isOwnLease(l: Lease<unknown>, own: Lease<unknown>): boolean {
  return l.subnet.ip === own.subnet.ip && l.subnet.len === own.subnet.len && l.publicIp === own.publicIp;
}

const ALWAYS_DIRECT = (): Reach => ({ direct: true });

export interface PlanInput<D> {
  config: NetworkConfig;
  own: Lease<D>;
  underlay: UnderlayFacts;
  /** Omitted: every peer counts as directly reachable (only asked by backends that need it). */
  reach?: (publicIp: number) => Reach;
}

/** Every peer's entries, by table, and the peers left out with why. */
export function planPeers<D>(backend: Backend<D>, input: PlanInput<D>, leases: Iterable<Lease<D>>): PeerEntries<D> {
  const ctx = planContext(input);
  const tables = baseTables(backend, ctx);
  const conflicts: Array<PeerConflict<D>> = [];
  const paths = new Map<string, number>();
  judgePeers(tables, input.own, [...leases], (l) => l, (l) => backend.planPeer(ctx, l), {
    accepted: (_l, plan) => void paths.set(plan.path, (paths.get(plan.path) ?? 0) + 1),
    skipped: (_l, c) => void conflicts.push(c),
  });
  return { tables, conflicts, paths };
}

export function planContext<D>(input: PlanInput<D>): PlanContext<D> {
  return { config: input.config, own: input.own, underlay: input.underlay, reach: input.reach ?? ALWAYS_DIRECT };
}

export function emptyTables(kinds: readonly EntryKind[]): Tables {
  const tables: Tables = {};
  for (const kind of kinds) tables[kind] = new Map() as never;
  return tables;
}

/** The backend's tables holding only what it wants whatever the peers (its fixedEntries). */
export function baseTables<D>(backend: Backend<D>, ctx: PlanContext<D>): Tables {
  const tables = emptyTables(backend.tables);
  for (const e of backend.fixedEntries?.(ctx) ?? []) addEntry(tables, e);
  return tables;
}

/** How `judgePeers` reports each peer (our own lease is neither). */
export interface Verdicts<T, D> {
  accepted(item: T, plan: { path: string; entries: PlannedEntry[] }): void;
  skipped(item: T, conflict: PeerConflict<D>): void;
}

/** The deterministic order of judging: the same inputs always give the same winner of a conflict (ties keep input order). */
export function comparePeers(a: Lease<unknown>, b: Lease<unknown>): number {
  return a.subnet.ip - b.subnet.ip || a.subnet.len - b.subnet.len || a.publicIp - b.publicIp;
}

/**
 * The shared rules over `items` (their leases and per-peer plans), accepted entries added to
 * `tables`. A peer's verdict depends only on peers overlapping its subnet or wanting one of
 * its entry keys, so judging any set closed under those relations gives each of its peers the
 * verdict a judgement of every peer would (src/backends/plan-index.ts relies on this).
 */
export function judgePeers<T, D>(tables: Tables, own: Lease<D>, items: T[], leaseOf: (t: T) => Lease<D>, planOf: (t: T) => PeerPlan, out: Verdicts<T, D>): void {
  // Prefixes either nest or are disjoint, and peers are visited in address order: a peer
  // overlaps an accepted one only if it overlaps the last accepted (O(n), not O(n²)).
  let lastAccepted: Prefix4 | undefined;
  const sorted = items.map((t, i) => ({ t, l: leaseOf(t), i })).sort((a, b) => comparePeers(a.l, b.l) || a.i - b.i);
  for (const { t, l: p } of sorted) {
    const skip = (reason: string, detail: string): void => out.skipped(t, { lease: p, reason, detail });
    if (isOwnLease(p, own)) continue;
    if (prefixesOverlap(p.subnet, own.subnet)) {
      skip('overlaps-own', 'its subnet overlaps ours');
      continue;
    }
    if (p.publicIp === own.publicIp) {
      skip('same-public-ip', 'it names our PublicIP');
      continue;
    }
    if (lastAccepted && prefixesOverlap(lastAccepted, p.subnet)) {
      skip('overlaps-peer', 'its subnet overlaps another peer’s');
      continue;
    }
    const plan = planOf(t);
    if (!plan.ok) {
      skip(plan.reason, plan.detail);
      continue;
    }
    const taken = plan.entries.find((e) => (tables[e.kind] as EntryMap | undefined)?.has(e.key));
    if (taken) {
      skip(taken.collision ?? `duplicate-${taken.kind}`, `its ${taken.kind} ${taken.key} is another peer’s`);
      continue;
    }
    lastAccepted = p.subnet;
    for (const e of plan.entries) addEntry(tables, e);
    out.accepted(t, plan);
  }
}

function addEntry(tables: Tables, e: PlannedEntry): void {
  const m = tables[e.kind] as Map<string, unknown> | undefined;
  if (!m) throw new RangeError(`backend planned a ${e.kind} entry but does not list that table`);
  m.set(e.key, e.entry);
}

export interface ComputeInput<D> extends PlanInput<D> {
  ownHeld: boolean;
  identity?: HostIdentity;
  peers: Iterable<Lease<D>>;
}

export interface ComputeResult<D, S extends DeviceBase> {
  desired: DesiredState<S>;
  conflicts: Array<PeerConflict<D>>;
  paths: Map<string, number>;
}

export function computeDesired<D, S extends DeviceBase>(backend: Backend<D, S>, input: ComputeInput<D>): ComputeResult<D, S> {
  const { tables, conflicts, paths } = planPeers(backend, input, input.peers);
  const device = backend.device({ config: input.config, own: input.own, ownHeld: input.ownHeld, underlay: input.underlay, ...(input.identity ? { identity: input.identity } : {}) });
  return { desired: { device, tables }, conflicts, paths };
}

/** Entry counts per table, e.g. for the peers gauge. */
export function tableSizes(t: Tables): Partial<Record<EntryKind, number>> {
  const out: Partial<Record<EntryKind, number>> = {};
  for (const [k, m] of Object.entries(t)) out[k as EntryKind] = (m as EntryMap).size;
  return out;
}
