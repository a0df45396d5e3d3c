// One probed peer as the probe subsystem keeps it: one record, in one map (the prober's, keyed
// by the peer's subnet text), carrying its addresses, its health, its place in the schedule and
// its metrics label text.
//
// Memory (issue 13): at 10,000 peers every key map is ~0.44 MB of hash table alone, and the
// prober's targets and health, the schedule's slots and the metrics' label texts were four of
// them, with a target, a slot and a label entry object per peer besides. Now one map, and per
// peer this record and its health (updated in place, health.ts).
import type { LabelText } from '../observe/metrics';
import type { PeerHealth } from './health';
import type { ScheduleSlot } from './schedule';

export interface ProbeTarget {
  /** The peer's subnet, "10.244.7.0/24": its identity in health, metrics and summaries. */
  key: string;
  overlay: number;
  publicIp: number;
}

/** A peer's label set on the per-peer gauges (metrics.ts): its subnet and underlay IP. */
export type PeerLabelName = 'peer_subnet' | 'peer_ip';

export interface ProbePeer extends ScheduleSlot {
  readonly key: string;
  /** Written by retarget only, which drops the label made from them. */
  readonly overlay: number;
  readonly publicIp: number;
  /** This peer's health, updated in place by each round (health.ts applyRound). */
  readonly health: PeerHealth;
  /** The per-peer gauges' label text for key and publicIp: made by the first scrape that lists the peer (metrics.ts). */
  label: LabelText<PeerLabelName> | undefined;
}

export function newProbePeer(t: ProbeTarget, health: PeerHealth): ProbePeer {
  // Every field set here, in one order: all records share one shape.
  return { key: t.key, overlay: t.overlay, publicIp: t.publicIp, health, due: 0, pos: -1, label: undefined };
}

/** The peer's addresses from `t` (same subnet, new lease): health and schedule stay. False when nothing changed. */
export function retarget(p: ProbePeer, t: ProbeTarget): boolean {
  if (p.overlay === t.overlay && p.publicIp === t.publicIp) return false;
  // The one writer of the addresses (readonly elsewhere), so the label never outlives its IP.
  const w: { overlay: number; publicIp: number } = p;
  w.overlay = t.overlay;
  w.publicIp = t.publicIp;
  p.label = undefined;
  return true;
}
