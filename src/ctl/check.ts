// `twillctl check`: the cluster's health view (src/probe/cluster-view.ts) for a person — a host
// table, a FROM×TO matrix for small clusters, each broken path with its kind, and the likely
// culprit. Pure, apart from gatherCheck's two etcd reads.
import { parseSubnetKey, subnetsPrefix } from '../subnet/lease';
import { formatPrefix4 } from '../ip/ipv4';
import type { EtcdAdmin } from '../subnet/etcd-registry';
import { HEALTH_TTL_S } from '../subnet/health-store';
import { buildCheckReport, type CheckHost, type CheckReport, type HostRef } from '../probe/cluster-view';
import { decodeSummary, healthPrefix, type HealthSummary } from '../probe/summary';
import { leaseRows } from './leases';
import { formatDuration, formatTable } from './table';

/** Hosts up to which the FROM×TO matrix is printed (a wider one does not fit a terminal). */
const MATRIX_MAX_HOSTS = 16;

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
  out.push(
    formatTable(
      ['HOST', 'UNDERLAY IP', 'SUBNET', 'REPORTED', 'PEERS', 'OK', 'UNREACHABLE', 'MTU', 'NOT YET'],
      r.hosts.map((h) => [h.name, h.publicIp, h.subnet, reportCell(h), String(h.peers), String(h.ok), String(h.unreachable), String(h.mtu), String(h.unknown)]),
    ),
  );
  if (r.hosts.length > 1 && r.hosts.length <= MATRIX_MAX_HOSTS) out.push('PATHS  (the row host probing the column host, over the overlay)\n' + matrix(r));
  const mtuOf = new Map(r.hosts.map((h) => [h.subnet, h.probeMtu]));
  if (r.problems.length > 0) {
    const lines = r.problems.map((p) => {
      const what =
        p.kind === 'mtu'
          ? `mtu: small probes answered, full-size (${mtuOf.get(p.from.subnet) ?? '?'}-byte, DF) probes lost`
          : 'unreachable: no probe answered';
      return `  ✗ ${who(p.from)} → ${who(p.to)}: ${what}, for ${formatDuration(nowS - p.sinceS)}`;
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
