// Peer-probe metrics, sampled from the prober and responder at scrape time.
//
// Per peer: reachable, full-MTU ok, last success, last round trip — four gauges, labelled by the
// peer's subnet and underlay IP, present once the peer has been judged. The round-trip
// *histogram* is one family over all peers, deliberately not per peer: per-peer histograms
// are O(peers × buckets) series on every host, O(hosts² × buckets) for the cluster's Prometheus
// (Cilium's per-node connectivity metrics hit exactly this at scale). At 10,000 peers the
// per-peer gauges are 40,000 lines per scrape (~4 MB), so they are sampled families: a scrape
// lists them straight from the prober's peer records, against one label text per peer shared
// by all four, kept on the record (formatted at the first scrape that lists the peer, again
// after its underlay IP changed: peer.ts retarget drops it). Nothing per series is kept
// (issue 13: that was ~24 MB of heap at 10,000 peers), nor a map of label texts.
import { labelText, type LabelText, type Metrics } from '../observe/metrics';
import { formatIp4 } from '../ip/ipv4';
import { PEER_STATUSES, type PeerHealth, type PeerStatus } from './health';
import type { PeerLabelName, ProbePeer } from './peer';
import type { ProberStats } from './prober';
import { RESPONDER_DROPS } from './respond';
import type { ResponderStats } from './responder';

export const PROBE_RTT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] as const;

export interface ProbeSources {
  /** Every probed peer, in the order to list them. The metrics write only their `label`. */
  peers(): Iterable<ProbePeer>;
  proberStats(): ProberStats | undefined;
  responderStats(): ResponderStats | undefined;
}

export function registerProbeMetrics(m: Metrics, src: ProbeSources): { observeRtt(ms: number): void } {
  const labels: readonly PeerLabelName[] = ['peer_subnet', 'peer_ip'];
  const labelOf = (p: ProbePeer): LabelText<PeerLabelName> => (p.label ??= labelText(labels, { peer_subnet: p.key, peer_ip: formatIp4(p.publicIp) }));
  // This scrape's judged peers in the prober's order (kept across scrapes: no garbage). A
  // render is synchronous: the health read below is the one the collector judged.
  const rows: ProbePeer[] = [];
  const perPeer = (name: string, help: string, value: (h: PeerHealth) => number | null): void =>
    m.sampledGauge(name, help, labels, (emit) => {
      for (const p of rows) {
        const v = value(p.health);
        if (v !== null) emit(labelOf(p), v);
      }
    });
  perPeer('twill_peer_reachable', '1 when the peer answers probes over the overlay, 0 when it stopped (absent until judged).', (h) => (h.reachable === null ? null : h.reachable ? 1 : 0));
  perPeer('twill_peer_mtu_ok', '1 when full-size (pod MTU, DF) probes reach the peer and come back, 0 when only small ones do.', (h) => (h.mtuOk === null ? null : h.mtuOk ? 1 : 0));
  perPeer('twill_peer_last_success_timestamp_seconds', 'When the peer last answered a probe (unix time).', (h) => (h.lastSuccess === null ? null : Math.floor(h.lastSuccess / 1000)));
  perPeer('twill_peer_rtt_seconds', 'Round trip of the last answered small probe to the peer.', (h) => (h.rttMs === null ? null : h.rttMs / 1000));
  const byStatus = m.gauge('twill_peers_health', 'Peers by probe status (ok, mtu, unreachable, unknown).', ['status']);
  const rtt = m.histogram('twill_probe_rtt_seconds', 'Round trip of answered small probes, all peers.', PROBE_RTT_BUCKETS);
  const sent = m.counter('twill_probes_sent_total', 'Probes sent, by size (small, full).', ['size']);
  const replies = m.counter('twill_probe_replies_total', 'Probe replies matched to a probe of ours.');
  const unmatched = m.counter('twill_probe_replies_unmatched_total', 'Datagrams on the prober socket that matched no probe of ours (late, forged, wrong source or size).');
  const sendErrors = m.counter('twill_probe_send_errors_total', 'Probes the kernel refused to send (e.g. EMSGSIZE: a local MTU below the pod MTU).');
  const answered = m.counter('twill_probe_responses_total', "Peers' probes this host's responder answered.");
  const dropped = m.counter('twill_probe_dropped_total', 'Datagrams the responder dropped, by reason.', ['reason']);
  for (const reason of RESPONDER_DROPS) dropped.inc({ reason }, 0);

  const seen = { small: 0, full: 0, replies: 0, unmatched: 0, sendErrors: 0, answered: 0, dropped: new Map<string, number>() };
  const delta = (now: number, key: 'small' | 'full' | 'replies' | 'unmatched' | 'sendErrors' | 'answered'): number => {
    const d = Math.max(0, now - seen[key]);
    seen[key] = now;
    return d;
  };

  m.addCollector(() => {
    const counts: Record<PeerStatus, number> = { unknown: 0, ok: 0, mtu: 0, unreachable: 0 };
    let n = 0;
    for (const p of src.peers()) {
      const h = p.health;
      counts[h.status]++;
      if (h.reachable === null && h.mtuOk === null && h.lastSuccess === null && h.rttMs === null) continue;
      rows[n++] = p;
    }
    rows.length = n;
    for (const s of PEER_STATUSES) byStatus.set({ status: s }, counts[s]);
    const p = src.proberStats();
    if (p) {
      sent.inc({ size: 'small' }, delta(p.sentSmall, 'small'));
      sent.inc({ size: 'full' }, delta(p.sentFull, 'full'));
      replies.inc(delta(p.replies, 'replies'));
      unmatched.inc(delta(p.unmatched, 'unmatched'));
      sendErrors.inc(delta(p.sendErrors, 'sendErrors'));
    }
    const r = src.responderStats();
    if (r) {
      answered.inc(delta(r.answered, 'answered'));
      for (const reason of RESPONDER_DROPS) {
        const now = r.dropped[reason];
        dropped.inc({ reason }, Math.max(0, now - (seen.dropped.get(reason) ?? 0)));
        seen.dropped.set(reason, now);
      }
    }
  });
  return { observeRtt: (ms) => rtt.observe(ms / 1000) };
}
