// The cluster's health view for `twillctl check`: every host's published summary (summary.ts)
// joined with the subnet leases, turned into problems a person can act on. Pure.
//
// - A path A→B is a problem when A's summary lists B as unreachable or mtu.
// - The view is incomplete when a host with a lease has no summary (daemon down, older
//   version, or its etcd TTL ran out), an unreadable one, a stale one, peers not judged yet, or
//   fewer peers probed than there are other leases.
// - A host is named as the likely cause when every other reporting host (at least two) has a
//   problem reaching it and at least one path elsewhere is fine: one broken host makes up to
//   2·(N−1) broken paths, and the reader wants the one name, not the list. Its own report is
//   not required: a host cut off from the underlay cannot publish what it sees.
import { compareSubnetText } from '../ip/ipv4';
import type { HealthSummary, ProblemKind } from './summary';

export interface HostRef {
  name: string;
  publicIp: string;
  subnet: string;
}

export type ReportState = 'ok' | 'missing' | 'stale' | 'invalid';

export interface CheckHost extends HostRef {
  report: ReportState;
  /** Seconds since the summary was written (null: none). */
  ageS: number | null;
  peers: number;
  ok: number;
  unknown: number;
  unreachable: number;
  mtu: number;
  /** Pod MTU its full-size probes are sent at (null: no report). */
  probeMtu: number | null;
}

export interface CheckProblem {
  from: HostRef;
  to: HostRef;
  kind: ProblemKind;
  sinceS: number;
}

export interface CheckSuspect {
  host: HostRef;
  kinds: ProblemKind[];
}

export interface CheckReport {
  /** No path has a problem. */
  healthy: boolean;
  /** Every host reported freshly and judged every peer. */
  complete: boolean;
  hosts: CheckHost[];
  problems: CheckProblem[];
  suspects: CheckSuspect[];
}

export interface CheckInput {
  leases: ReadonlyArray<{ subnet: string; publicIp: string }>;
  /** By subnet ("10.244.7.0/24"); an Error for a value that did not decode. */
  summaries: ReadonlyMap<string, HealthSummary | Error>;
  nowS: number;
  /** A summary older than this is stale. */
  staleAfterS: number;
}

const bySubnet = (a: { subnet: string }, b: { subnet: string }): number => compareSubnetText(a.subnet, b.subnet);

export function buildCheckReport(input: CheckInput): CheckReport {
  const refs = new Map<string, HostRef>();
  for (const l of input.leases) {
    const s = input.summaries.get(l.subnet);
    const name = s && !(s instanceof Error) ? s.name : l.publicIp;
    refs.set(l.subnet, { name, publicIp: l.publicIp, subnet: l.subnet });
  }
  const refOf = (subnet: string): HostRef => refs.get(subnet) ?? { name: '?', publicIp: '?', subnet };

  const hosts: CheckHost[] = [];
  const problems: CheckProblem[] = [];
  const fresh = new Map<string, HealthSummary>();
  for (const ref of refs.values()) {
    const s = input.summaries.get(ref.subnet);
    const row: CheckHost = { ...ref, report: 'missing', ageS: null, peers: 0, ok: 0, unknown: 0, unreachable: 0, mtu: 0, probeMtu: null };
    if (s instanceof Error) row.report = 'invalid';
    else if (s) {
      row.ageS = Math.max(0, input.nowS - s.at);
      row.report = row.ageS > input.staleAfterS ? 'stale' : 'ok';
      row.peers = s.peers;
      row.ok = s.ok;
      row.unknown = s.unknown;
      row.probeMtu = s.mtu;
      for (const b of s.bad) {
        if (!refs.has(b.subnet)) continue; // a peer whose lease is gone since
        if (b.kind === 'mtu') row.mtu++;
        else row.unreachable++;
        if (row.report === 'ok') problems.push({ from: ref, to: refOf(b.subnet), kind: b.kind, sinceS: b.since });
      }
      if (row.report === 'ok') fresh.set(ref.subnet, s);
    }
    hosts.push(row);
  }
  hosts.sort(bySubnet);
  problems.sort((a, b) => bySubnet(a.from, b.from) || bySubnet(a.to, b.to));

  // A host that probes fewer peers than there are other leases has not seen them all yet (a
  // summary written before its first full list, found under load) or does not program some
  // (a host-gw peer it cannot reach directly): either way its row does not vouch for them.
  const others = Math.max(0, refs.size - 1);
  const complete = hosts.every((h) => h.report === 'ok' && h.unknown === 0 && h.peers >= others);
  return { healthy: problems.length === 0, complete, hosts, problems, suspects: suspects(refs, fresh, problems) };
}

function suspects(refs: Map<string, HostRef>, fresh: Map<string, HealthSummary>, problems: CheckProblem[]): CheckSuspect[] {
  // With two hosts nothing tells which side is broken.
  if (problems.length === 0 || refs.size <= 2) return [];
  const out: CheckSuspect[] = [];
  for (const ref of refs.values()) {
    const others = [...fresh.keys()].filter((s) => s !== ref.subnet);
    if (others.length < 2) continue;
    const inbound = problems.filter((p) => p.to.subnet === ref.subnet);
    const everyoneFails = others.every((o) => inbound.some((p) => p.from.subnet === o));
    if (!everyoneFails) continue;
    // Some path not involving this host works: otherwise the fault is not this host's alone.
    const elsewhereFine = [...fresh].some(([s, sum]) => s !== ref.subnet && sum.ok > 0);
    if (!elsewhereFine) continue;
    const kinds = [...new Set(inbound.map((p) => p.kind))].sort();
    out.push({ host: ref, kinds });
  }
  return out;
}

/** Exit status for `twillctl check`: 0 healthy and complete, 1 problems, 3 not yet complete. */
export function checkExitCode(r: CheckReport): number {
  if (!r.healthy) return 1;
  return r.complete ? 0 : 3;
}
