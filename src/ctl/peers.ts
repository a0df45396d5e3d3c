// `twillctl status --peers`: this host's view of every peer, from twilld's per-peer probe
// metrics (src/probe/metrics.ts). Parsing and rendering are pure; fetchPeers does the GET.
import { compareSubnetText } from '../ip/ipv4';
import { formatDuration, formatTable } from './table';
import { parsePrometheus, statusBaseUrl, StatusUnreachableError, type Sample } from './status';

export interface PeerRow {
  subnet: string;
  publicIp: string;
  status: 'ok' | 'mtu' | 'unreachable' | 'unknown';
  rttMs: number | null;
  mtuOk: boolean | null;
  /** Unix seconds. */
  lastSuccess: number | null;
}

export function peerRows(samples: readonly Sample[]): PeerRow[] {
  const rows = new Map<string, PeerRow>();
  const row = (s: Sample): PeerRow => {
    const subnet = s.labels['peer_subnet'] ?? '?';
    let r = rows.get(subnet);
    if (!r) rows.set(subnet, (r = { subnet, publicIp: s.labels['peer_ip'] ?? '?', status: 'unknown', rttMs: null, mtuOk: null, lastSuccess: null }));
    return r;
  };
  const reachable = new Map<string, boolean>();
  for (const s of samples) {
    if (s.name === 'twill_peer_reachable') reachable.set(row(s).subnet, s.value === 1);
    else if (s.name === 'twill_peer_mtu_ok') row(s).mtuOk = s.value === 1;
    else if (s.name === 'twill_peer_rtt_seconds') row(s).rttMs = s.value * 1000;
    else if (s.name === 'twill_peer_last_success_timestamp_seconds') row(s).lastSuccess = s.value;
  }
  for (const r of rows.values()) {
    const reach = reachable.get(r.subnet);
    r.status = reach === false ? 'unreachable' : reach === true && r.mtuOk === false ? 'mtu' : reach === true && r.mtuOk === true ? 'ok' : 'unknown';
  }
  return [...rows.values()].sort((a, b) => compareSubnetText(a.subnet, b.subnet));
}

export function renderPeers(rows: readonly PeerRow[], nowS: number): string {
  if (rows.length === 0) return 'no peers probed (yet)\n';
  return formatTable(
    ['PEER SUBNET', 'UNDERLAY IP', 'STATUS', 'RTT', 'FULL MTU', 'LAST ANSWER'],
    rows.map((r) => [
      r.subnet,
      r.publicIp,
      r.status,
      r.rttMs === null ? '-' : `${r.rttMs.toFixed(2)} ms`,
      r.mtuOk === null ? '-' : r.mtuOk ? 'ok' : 'LOST',
      r.lastSuccess === null ? 'never' : `${formatDuration(nowS - r.lastSuccess)} ago`,
    ]),
  );
}

export async function fetchPeers(httpAddr: string, timeoutMs = 3000): Promise<PeerRow[]> {
  const url = statusBaseUrl(httpAddr) + '/metrics';
  let body: string;
  try {
    body = await (await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })).text();
  } catch (err) {
    throw new StatusUnreachableError(url, err);
  }
  return peerRows(parsePrometheus(body));
}
