// What `twill-lab up` and `status` print: hosts, pods, and the pod×pod matrix, laid out for a
// person to read at a glance (and for a test to parse). Pure.
import { formatTable } from '../ctl/table';
import type { OutsideResult } from './outside-probe';
import type { ProbeResult } from './probe';

export interface HostLine {
  name: string;
  ns: string;
  underlayIp: string;
  subnet: string | null;
  /** How peers know the host, by backend: VTEP MAC, WireGuard public key, '-' for host-gw (as `twillctl leases`). */
  identity: string | null;
  /** 'ready', 'not ready', 'stopped' or 'unreachable'. */
  daemon: string;
  pid: number | null;
  peers: number | null;
}

export interface PodLine {
  name: string;
  host: string;
  ns: string;
  address: string | null;
}

export interface LabReport {
  name: string;
  dir: string;
  etcd: string;
  underlayNs: string;
  hosts: HostLine[];
  pods: PodLine[];
  matrix: ProbeResult[];
  /** Each pod to the outside namespace (absent: the lab has none). */
  outside?: OutsideResult[];
}

export function failedPairs(r: LabReport): ProbeResult[] {
  return r.matrix.filter((m) => !m.ok);
}

export function failedOutside(r: LabReport): OutsideResult[] {
  return (r.outside ?? []).filter((o) => !o.ok);
}

/** True when every pod has an address, every pair answered and every pod reached the outside. */
export function reportOk(r: LabReport): boolean {
  return r.pods.every((p) => p.address !== null) && failedPairs(r).length === 0 && r.matrix.length === r.pods.length ** 2 && failedOutside(r).length === 0;
}

export function renderReport(r: LabReport, cmdPrefix: string): string {
  const out: string[] = [];
  out.push(`twill lab "${r.name}" (${r.dir}): ${r.hosts.length} hosts, ${r.pods.length} pods; etcd ${r.etcd} in namespace ${r.underlayNs}`);
  out.push('');
  out.push('HOSTS');
  out.push(
    formatTable(
      ['HOST', 'UNDERLAY IP', 'SUBNET', 'VTEP MAC / KEY', 'TWILLD', 'PEERS', 'NAMESPACE'],
      r.hosts.map((h) => [
        h.name,
        h.underlayIp,
        h.subnet ?? '-',
        h.identity ?? '-',
        h.pid !== null ? `${h.daemon} (pid ${h.pid})` : h.daemon,
        h.peers === null ? '-' : String(h.peers),
        h.ns,
      ]),
    ).trimEnd(),
  );
  out.push('');
  out.push('PODS');
  out.push(formatTable(['POD', 'HOST', 'ADDRESS', 'NAMESPACE'], r.pods.map((p) => [p.name, p.host, p.address ?? '-', p.ns])).trimEnd());
  out.push('');
  const withOutside = r.outside !== undefined;
  out.push(
    'CONNECTIVITY  (UDP echo from the row pod to the column pod, across the hosts' +
      (withOutside ? '; OUTSIDE: to a namespace beyond the cluster, with the source address it saw' : '') +
      ')',
  );
  const cell = (from: string, to: string): string => {
    const m = r.matrix.find((x) => x.from === from && x.to === to);
    return m === undefined ? '-' : m.ok ? 'ok' : 'FAIL';
  };
  const outsideCell = (from: string): string => {
    const o = r.outside?.find((x) => x.from === from);
    return o === undefined ? '-' : o.ok ? `ok from ${o.seenSource}` : 'FAIL';
  };
  const names = r.pods.map((p) => p.name);
  out.push(
    formatTable(
      ['FROM \\ TO', ...names, ...(withOutside ? ['OUTSIDE'] : [])],
      names.map((from) => [from, ...names.map((to) => cell(from, to)), ...(withOutside ? [outsideCell(from)] : [])]),
    ).trimEnd(),
  );
  out.push('');
  const failed = failedPairs(r);
  const total = r.pods.length ** 2;
  if (reportOk(r)) {
    const rtts = r.matrix.map((m) => m.rttMs ?? 0);
    const max = rtts.length ? Math.max(...rtts) : 0;
    out.push(`all ${total} pod pairs reachable (max round trip ${max.toFixed(2)} ms)${withOutside ? '; every pod reaches the outside' : ''}`);
  } else {
    const missing = r.pods.filter((p) => p.address === null).map((p) => p.name);
    if (missing.length > 0) out.push(`pods without an address: ${missing.join(', ')}`);
    if (failed.length > 0 || missing.length > 0) out.push(`${failed.length} of ${total} pod pairs FAILED:`);
    for (const f of failed) out.push(`  ${f.from} -> ${f.to}${f.error ? `: ${f.error}` : ''}`);
    const noOut = failedOutside(r);
    if (noOut.length > 0) out.push(`${noOut.length} pods cannot reach the outside (is --ip-masq off?): ${noOut.map((o) => `${o.from}${o.error ? ` (${o.error})` : ''}`).join(', ')}`);
  }
  out.push('');
  const pod = r.pods.find((p) => p.address !== null);
  const other = r.pods.find((p) => p.address !== null && p.host !== pod?.host) ?? pod;
  out.push('Next:');
  if (pod && other) out.push(`  ${cmdPrefix} exec ${pod.name} -- ping -c 3 ${other.address!.split('/')[0]}`);
  if (r.hosts[0]) out.push(`  ${cmdPrefix} exec ${r.hosts[0].name} -- ip route      (a host's routes: protocol 113, one per peer subnet)`);
  out.push(`  ${cmdPrefix} status   |   ${cmdPrefix} down`);
  return out.join('\n') + '\n';
}
