// `twillctl check`: the cluster's health view (src/probe/cluster-view.ts) for a person — a host
// table, a FROM×TO matrix for small clusters, each broken path with its kind, and the likely
// culprit. Pure, apart from gatherCheck's two etcd reads.
import { parseSubnetKey, subnetsPrefix } from '../subnet/lease';
import { formatPrefix4 } from '../ip/ipv4';
import type { EtcdAdmin } from '../subnet/etcd-admin';
import { HEALTH_TTL_S } from '../subnet/health-store';
import { buildCheckReport, type CheckHost, type CheckProblem, type CheckReport, type HostRef } from '../probe/cluster-view';
import { decodeSummary, healthPrefix, type HealthSummary } from '../probe/summary';
import { leaseRows } from './leases';
import { formatDuration, formatTable } from './table';

/** Hosts up to which the FROM×TO matrix is printed (a wider one does not fit a terminal). */
const MATRIX_MAX_HOSTS = 16;
/** Hosts up to which every host gets a table row; beyond, only those with a problem. */
const TABLE_ALL_HOSTS = 50;

export async function gatherCheck(admin: EtcdAdmin, prefix: string, nowS: number): Promise<CheckReport> {
  const [leases, raw] = await Promise.all([admin.listWithTtl(subnetsPrefix(prefix)), admin.list(healthPrefix(prefix))]);
  const summaries = new Map<string, HealthSummary | Error>();
  for (const [key, value] of raw) {
    // Same spelling as subnet keys (10.244.7.0-24), under health/ instead of subnets/.
    const subnet = parseSubnetKey(prefix, key.replace(`${prefix}/health/`, `${prefix}/subnets/`));
    if (!subnet) continue;
    try {
      summaries.set(formatPrefix4(subnet), decodeSummary(value));
    } catch (err) {
      summaries.set(formatPrefix4(subnet), err as Error);
    }
  }
  const rows = leaseRows(prefix, leases).filter((r) => !r.subnet.startsWith('?'));
  return buildCheckReport({ leases: rows.map((r) => ({ subnet: r.subnet, publicIp: r.publicIp })), summaries, nowS, staleAfterS: HEALTH_TTL_S });
}

/** Size from which the problems sharing one end (and kind) are printed as one line. */
const GROUP_FROM = 3;

/**
 * One line per problem, except where GROUP_FROM or more share their destination (or source)
 * and kind: one broken host among 1,000 is one line each way, not 1,998.
 */
export function groupProblems(problems: readonly CheckProblem[]): Array<{ side: 'to' | 'from'; problems: CheckProblem[] }> {
  const left = new Set(problems);
  const out: Array<{ side: 'to' | 'from'; problems: CheckProblem[] }> = [];
  for (const side of ['to', 'from'] as const) {
    const groups = new Map<string, CheckProblem[]>();
    for (const p of left) {
      const k = `${p[side].subnet} ${p.kind}`;
      const g = groups.get(k);
      if (g) g.push(p);
      else groups.set(k, [p]);
    }
    for (const g of groups.values()) {
      if (g.length < GROUP_FROM) continue;
      out.push({ side, problems: g });
      for (const p of g) left.delete(p);
    }
  }
  for (const p of left) out.push({ side: 'to', problems: [p] });
  return out;
}

const who = (h: HostRef): string => `${h.name} (${h.publicIp}, ${h.subnet})`;

function reportCell(h: CheckHost): string {
  if (h.report === 'ok') return `${formatDuration(h.ageS ?? 0)} ago`;
  if (h.report === 'stale') return `STALE (${formatDuration(h.ageS ?? 0)})`;
  return h.report === 'missing' ? 'MISSING' : 'UNREADABLE';
}

function matrix(r: CheckReport): string {
  // A host nobody reaches cannot have published what it sees since: its row is not current.
  const cutOff = new Set(r.suspects.filter((x) => x.kinds.includes('unreachable')).map((x) => x.host.subnet));
  const bad = new Map(r.problems.map((p) => [`${p.from.subnet}>${p.to.subnet}`, p.kind === 'mtu' ? 'MTU' : 'UNREACH']));
  const rows = r.hosts.map((from) => [
    from.name,
    ...r.hosts.map((to) => {
      if (to.subnet === from.subnet) return '-';
      if (from.report !== 'ok' || cutOff.has(from.subnet)) return '?';
      return bad.get(`${from.subnet}>${to.subnet}`) ?? (from.unknown > 0 ? '?' : 'ok');
    }),
  ]);
  return formatTable(['FROM \\ TO', ...r.hosts.map((h) => h.name)], rows);
}

export function renderCheck(r: CheckReport, nowS: number): string {
  const out: string[] = [];
  // In a large cluster only the hosts with something to say are listed.
  // A problem explained by a likely cause does not list every host that sees it.
  const suspect = new Set(r.suspects.map((x) => x.host.subnet));
  const unexplained = r.problems.filter((p) => !suspect.has(p.from.subnet) && !suspect.has(p.to.subnet));
  const listed =
    r.hosts.length <= TABLE_ALL_HOSTS
      ? r.hosts
      : r.hosts.filter((h) => h.report !== 'ok' || h.unknown > 0 || suspect.has(h.subnet) || unexplained.some((p) => p.from.subnet === h.subnet || p.to.subnet === h.subnet));
  out.push(
    formatTable(
      ['HOST', 'UNDERLAY IP', 'SUBNET', 'REPORTED', 'PEERS', 'OK', 'UNREACHABLE', 'MTU', 'NOT YET'],
      listed.map((h) => [h.name, h.publicIp, h.subnet, reportCell(h), String(h.peers), String(h.ok), String(h.unreachable), String(h.mtu), String(h.unknown)]),
    ) + (listed.length < r.hosts.length ? `(${r.hosts.length - listed.length} more hosts: reporting, every path of theirs ok${r.suspects.length ? ' but those to and from the likely cause' : ''})\n` : ''),
  );
  if (r.hosts.length > 1 && r.hosts.length <= MATRIX_MAX_HOSTS) out.push('PATHS  (the row host probing the column host, over the overlay)\n' + matrix(r));
  const mtuOf = new Map(r.hosts.map((h) => [h.subnet, h.probeMtu]));
  if (r.problems.length > 0) {
    const what = (kind: string, from: HostRef): string =>
      kind === 'mtu' ? `mtu: small probes answered, full-size (${mtuOf.get(from.subnet) ?? '?'}-byte, DF) probes lost` : 'unreachable: no probe answered';
    const lines = groupProblems(r.problems).map((g) => {
      if (g.problems.length === 1) {
        const p = g.problems[0]!;
        return `  ✗ ${who(p.from)} → ${who(p.to)}: ${what(p.kind, p.from)}, for ${formatDuration(nowS - p.sinceS)}`;
      }
      const names = g.problems.map((p) => (g.side === 'to' ? p.from.name : p.to.name));
      const list = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
      const first = g.problems[0]!;
      return g.side === 'to'
        ? `  ✗ ${names.length} hosts (${list}) → ${who(first.to)}: ${what(first.kind, first.from)}`
        : `  ✗ ${who(first.from)} → ${names.length} hosts (${list}): ${what(first.kind, first.from)}`;
    });
    out.push('PROBLEMS\n' + lines.join('\n') + '\n');
  }
  for (const s of r.suspects) out.push(`likely cause: ${who(s.host)} — every other host reports ${s.kinds.join('/')} to it\n`);
  const notReporting = r.hosts.filter((h) => h.report !== 'ok');
  if (notReporting.length > 0) out.push(`not reporting: ${notReporting.map((h) => `${who(h)} ${h.report}`).join('; ')}\n`);
  const paths = r.hosts.reduce((a, h) => a + h.peers, 0);
  const verdict = !r.healthy
    ? `UNHEALTHY: ${r.problems.length} of ${paths} paths broken (${['unreachable', 'mtu'].map((k) => `${k} ${r.problems.filter((p) => p.kind === k).length}`).join(', ')})`
    : r.complete
      ? `healthy: all ${paths} paths answer small and full-size probes`
      : `no broken path seen, but the view is incomplete (${r.hosts.filter((h) => h.unknown > 0).length} hosts still judging peers, ${notReporting.length} not reporting)`;
  out.push(verdict + '\n');
  return out.join('\n');
}
