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
import type { Backend, HostIdentity, PlanContext, PlannedEntry, Reach, UnderlayFacts } from './types';

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
  const ctx: PlanContext<D> = { config: input.config, own: input.own, underlay: input.underlay, reach: input.reach ?? ALWAYS_DIRECT };
  const own = input.own;
  const tables: Tables = {};
  for (const kind of backend.tables) tables[kind] = new Map() as never;
  for (const e of backend.fixedEntries?.(ctx) ?? []) addEntry(tables, e);
  const conflicts: Array<PeerConflict<D>> = [];
  const paths = new Map<string, number>();
  const skip = (lease: Lease<D>, reason: string, detail: string): void => void conflicts.push({ lease, reason, detail });
  // Prefixes either nest or are disjoint, and peers are visited in address order: a peer
  // overlaps an accepted one only if it overlaps the last accepted (O(n), not O(n²)).
  let lastAccepted: Prefix4 | undefined;

  // Deterministic order: the same inputs always give the same winner of a conflict.
  const peers = [...leases].sort((a, b) => a.subnet.ip - b.subnet.ip || a.subnet.len - b.subnet.len || a.publicIp - b.publicIp);
  for (const p of peers) {
    if (isOwnLease(p, own)) continue;
    if (prefixesOverlap(p.subnet, own.subnet)) {
      skip(p, 'overlaps-own', 'its subnet overlaps ours');
      continue;
    }
    if (p.publicIp === own.publicIp) {
      skip(p, 'same-public-ip', 'it names our PublicIP');
      continue;
    }
    if (lastAccepted && prefixesOverlap(lastAccepted, p.subnet)) {
      skip(p, 'overlaps-peer', 'its subnet overlaps another peer’s');
      continue;
    }
    const plan = backend.planPeer(ctx, p);
    if (!plan.ok) {
      skip(p, plan.reason, plan.detail);
      continue;
    }
    const taken = plan.entries.find((e) => (tables[e.kind] as EntryMap | undefined)?.has(e.key));
    if (taken) {
      skip(p, taken.collision ?? `duplicate-${taken.kind}`, `its ${taken.kind} ${taken.key} is another peer’s`);
      continue;
    }
    lastAccepted = p.subnet;
    for (const e of plan.entries) addEntry(tables, e);
    paths.set(plan.path, (paths.get(plan.path) ?? 0) + 1);
  }
  return { tables, conflicts, paths };
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
