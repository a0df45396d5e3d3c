// A host's health summary: what it publishes under <prefix>/health/<subnet key> for the others
// and for `twillctl check`. Pure.
//
// Compact on purpose: counts, plus one entry per peer that is *not* ok. A healthy host's
// summary is ~200 bytes whatever the cluster size; at 1,000 hosts all summaries together are
// ~200 KB, read in one range request. The value changes only when a peer's status changes,
// so it is written on change (and on a slow heartbeat that refreshes `at` and the etcd TTL);
// `sameContent` ignores `at` for that comparison.
import { compareSubnetText, formatIp4, formatPrefix4, parseIp4, parsePrefix4, type Prefix4 } from '../ip/ipv4';
import { ProbeError } from './errors';
import type { PeerHealth, PeerStatus } from './health';

export const SUMMARY_VERSION = 1;

export type ProblemKind = 'unreachable' | 'mtu';

export interface SummaryProblem {
  subnet: string;
  kind: ProblemKind;
  /** Epoch seconds. */
  since: number;
}

export interface HealthSummary {
  v: number;
  name: string;
  publicIp: string;
  subnet: string;
  /** Epoch seconds when written. */
  at: number;
  /** Seconds between rounds to one peer right now (the interval, or longer at scale). */
  roundS: number;
  /** Pod MTU the full-size probes are sent at. */
  mtu: number;
  peers: number;
  ok: number;
  unknown: number;
  bad: SummaryProblem[];
}

export function healthPrefix(prefix: string): string {
  return `${prefix}/health/`;
}

/** flannel's subnet key spelling (10.244.7.0-24), outside its subnets/ folder. */
export function healthKey(prefix: string, subnet: Prefix4): string {
  return `${healthPrefix(prefix)}${formatIp4(subnet.ip)}-${subnet.len}`;
}

export function buildSummary(
  self: { name: string; publicIp: string; subnet: string; mtu: number },
  peers: Iterable<{ readonly key: string; readonly health: PeerHealth }>,
  roundMs: number,
  nowMs: number,
): HealthSummary {
  const s: HealthSummary = { v: SUMMARY_VERSION, ...self, at: Math.floor(nowMs / 1000), roundS: Math.ceil(roundMs / 1000), peers: 0, ok: 0, unknown: 0, bad: [] };
  const counts: Record<PeerStatus, number> = { unknown: 0, ok: 0, mtu: 0, unreachable: 0 };
  for (const { key, health: h } of peers) {
    s.peers++;
    counts[h.status]++;
    if (h.status === 'mtu' || h.status === 'unreachable') s.bad.push({ subnet: key, kind: h.status, since: Math.floor(h.since / 1000) });
  }
  s.ok = counts.ok;
  s.unknown = counts.unknown;
  s.bad.sort((a, b) => compareSubnetText(a.subnet, b.subnet));
  return s;
}

/**
 * Equal but for `at`. Field by field: offered every 10 s, and with thousands of peers down two
 * JSON texts of ~0.5 MB each time would be large objects only a full collection frees.
 */
export function sameContent(a: HealthSummary, b: HealthSummary): boolean {
  if (a.v !== b.v || a.name !== b.name || a.publicIp !== b.publicIp || a.subnet !== b.subnet || a.roundS !== b.roundS || a.mtu !== b.mtu) return false;
  if (a.peers !== b.peers || a.ok !== b.ok || a.unknown !== b.unknown || a.bad.length !== b.bad.length) return false;
  for (let i = 0; i < a.bad.length; i++) {
    const x = a.bad[i]!;
    const y = b.bad[i]!;
    if (x.subnet !== y.subnet || x.kind !== y.kind || x.since !== y.since) return false;
  }
  return true;
}

export function encodeSummary(s: HealthSummary): string {
  return JSON.stringify(s);
}

function need<T>(ok: boolean, v: T, what: string): T {
  if (!ok) throw new ProbeError('ERR_HEALTH_SUMMARY', `health summary: ${what}`);
  return v;
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;

/** Strict decode; throws ProbeError('ERR_HEALTH_SUMMARY') naming the bad field. */
export function decodeSummary(text: string): HealthSummary {
  let d: Record<string, unknown>;
  try {
    d = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ProbeError('ERR_HEALTH_SUMMARY', 'health summary: not JSON', { cause: err });
  }
  need(typeof d === 'object' && d !== null && !Array.isArray(d), 0, 'not an object');
  need(d['v'] === SUMMARY_VERSION, 0, `unsupported version ${String(d['v'])}`);
  const str = (k: string): string => need(typeof d[k] === 'string', d[k] as string, `${k} missing`);
  const count = (k: string): number => need(isCount(d[k]), d[k] as number, `${k} is not a count`);
  const publicIp = str('publicIp');
  const subnet = str('subnet');
  try {
    parseIp4(publicIp);
    parsePrefix4(subnet);
  } catch (err) {
    throw new ProbeError('ERR_HEALTH_SUMMARY', 'health summary: bad publicIp or subnet', { cause: err });
  }
  const badRaw = need(Array.isArray(d['bad']), d['bad'] as unknown[], 'bad is not a list');
  const bad = badRaw.map((b) => {
    const o = b as Record<string, unknown>;
    need(typeof o === 'object' && o !== null && typeof o['subnet'] === 'string' && (o['kind'] === 'unreachable' || o['kind'] === 'mtu') && isCount(o['since']), 0, 'bad entry malformed');
    return { subnet: o['subnet'] as string, kind: o['kind'] as ProblemKind, since: o['since'] as number };
  });
  return {
    v: SUMMARY_VERSION,
    name: str('name'),
    publicIp,
    subnet: formatPrefix4(parsePrefix4(subnet)),
    at: count('at'),
    roundS: count('roundS'),
    mtu: count('mtu'),
    peers: count('peers'),
    ok: count('ok'),
    unknown: count('unknown'),
    bad,
  };
}
