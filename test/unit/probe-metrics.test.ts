// Per-peer probe metrics as scraped, and `twillctl status --peers` reading them back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../src/observe/metrics';
import { parseIp4 } from '../../src/ip/ipv4';
import { registerProbeMetrics } from '../../src/probe/metrics';
import { newPeerHealth, type PeerHealth } from '../../src/probe/health';
import { newProbePeer, retarget, type ProbePeer } from '../../src/probe/peer';
import { parsePrometheus } from '../../src/ctl/status';
import { peerRows, renderPeers } from '../../src/ctl/peers';

/** A registry with the probe metrics over `peers`, and fixed prober and responder counters. */
function withProbeMetrics(peers: ProbePeer[]): { m: Metrics; observeRtt(ms: number): void; dropped: Record<string, number> } {
  const m = new Metrics();
  const dropped = { short: 3, long: 0, magic: 2, version: 0, kind: 0, flags: 0, padding: 0, source: 5, 'not-request': 0, rate: 1 };
  const { observeRtt } = registerProbeMetrics(m, {
    peers: () => peers,
    proberStats: () => ({ sentSmall: 10, sentFull: 10, replies: 18, unmatched: 1, sendErrors: 2 }),
    responderStats: () => ({ answered: 7, dropped }),
  });
  return { m, observeRtt, dropped };
}

test('per-peer gauges, status counts and drop counters render; status --peers reads them back', () => {
  const health: Array<[string, PeerHealth]> = [
    ['10.244.2.0/24', { ...newPeerHealth(0), status: 'ok', reachable: true, mtuOk: true, rttMs: 0.5, lastSuccess: 1_000_000_000 }],
    ['10.244.3.0/24', { ...newPeerHealth(0), status: 'mtu', reachable: true, mtuOk: false, rttMs: 0.7, lastSuccess: 1_000_000_000 }],
    ['10.244.4.0/24', { ...newPeerHealth(0), status: 'unreachable', reachable: false, mtuOk: true, rttMs: 0.6, lastSuccess: 999_000_000 }],
    ['10.244.5.0/24', newPeerHealth(0)],
  ];
  const peers = health.map(([key, h], i) => newProbePeer({ key, overlay: 0, publicIp: parseIp4(`172.30.0.${12 + i}`) }, h));
  const { m, observeRtt, dropped } = withProbeMetrics(peers);
  observeRtt(0.5);
  const body = m.render();
  assert.match(body, /^twill_peer_reachable\{peer_subnet="10\.244\.4\.0\/24",peer_ip="172\.30\.0\.14"\} 0$/m);
  assert.match(body, /^twill_peer_mtu_ok\{peer_subnet="10\.244\.3\.0\/24",peer_ip="172\.30\.0\.13"\} 0$/m);
  assert.match(body, /^twill_peers_health\{status="unknown"\} 1$/m);
  assert.match(body, /^twill_probes_sent_total\{size="full"\} 10$/m);
  assert.match(body, /^twill_probe_dropped_total\{reason="source"\} 5$/m);
  assert.match(body, /^twill_probe_rtt_seconds_count 1$/m);
  assert.doesNotMatch(body, /peer_subnet="10\.244\.5\.0\/24"/, 'a peer not judged yet has no series');
  // A second scrape adds only what happened since.
  dropped.source = 6;
  assert.match(m.render(), /^twill_probe_dropped_total\{reason="source"\} 6$/m);

  const rows = peerRows(parsePrometheus(body));
  assert.deepEqual(rows.map((r) => [r.subnet, r.publicIp, r.status, r.mtuOk]), [
    ['10.244.2.0/24', '172.30.0.12', 'ok', true],
    ['10.244.3.0/24', '172.30.0.13', 'mtu', false],
    ['10.244.4.0/24', '172.30.0.14', 'unreachable', true],
  ]);
  const text = renderPeers(rows, 1_000_010);
  assert.match(text, /^10\.244\.3\.0\/24\s+172\.30\.0\.13\s+mtu\s+0\.70 ms\s+LOST\s+10s ago$/m);
  assert.match(text, /^10\.244\.4\.0\/24\s+172\.30\.0\.14\s+unreachable\s+0\.60 ms\s+ok\s+16m50s ago$/m);
});

// Every scrape lists the peers as they are then: the prober's order, only judged values
// present, each peer's label text for its underlay IP now.
test('per-peer series across scrapes: values, a peer judged later, an IP change, a peer gone', () => {
  const judged = (rttMs: number, ok = true): PeerHealth => ({ ...newPeerHealth(0), status: ok ? 'ok' : 'unreachable', reachable: ok, mtuOk: ok, rttMs, lastSuccess: 2_000_000 });
  const peer = (subnet: string, ip: string, h: PeerHealth): ProbePeer => newProbePeer({ key: subnet, overlay: 0, publicIp: parseIp4(ip) }, h);
  const peers = new Map<string, ProbePeer>(
    [peer('10.244.1.0/24', '172.30.0.1', judged(1)), peer('10.244.2.0/24', '172.30.0.2', newPeerHealth(0)), peer('10.244.3.0/24', '172.30.0.3', { ...newPeerHealth(0), reachable: false })].map((p) => [p.key, p]),
  );
  // A round writes into the peer's health (health.ts applyRound).
  const judge = (subnet: string, h: PeerHealth): void => void Object.assign(peers.get(subnet)!.health, h);
  const m = new Metrics();
  registerProbeMetrics(m, {
    peers: () => peers.values(),
    proberStats: () => undefined,
    responderStats: () => undefined,
  });
  const peerLines = (): string[] => m.render().split('\n').filter((l) => /^twill_peer_[a-z_]+\{/.test(l));
  const l = (name: string, subnet: string, ip: string, v: string): string => `twill_peer_${name}{peer_subnet="${subnet}",peer_ip="${ip}"} ${v}`;
  const a = (name: string, v: string) => l(name, '10.244.1.0/24', '172.30.0.1', v);
  const b = (name: string, v: string) => l(name, '10.244.2.0/24', '172.30.0.2', v);
  const c = (name: string, v: string, ip = '172.30.0.3') => l(name, '10.244.3.0/24', ip, v);

  assert.deepEqual(peerLines(), [a('reachable', '1'), c('reachable', '0'), a('mtu_ok', '1'), a('last_success_timestamp_seconds', '2000'), a('rtt_seconds', '0.001')]);
  judge('10.244.1.0/24', judged(2, false));
  assert.deepEqual(peerLines(), [a('reachable', '0'), c('reachable', '0'), a('mtu_ok', '0'), a('last_success_timestamp_seconds', '2000'), a('rtt_seconds', '0.002')]);
  // Judged now: in the prober's order, between the other two, not appended.
  judge('10.244.2.0/24', judged(3));
  assert.deepEqual(peerLines(), [
    a('reachable', '0'), b('reachable', '1'), c('reachable', '0'),
    a('mtu_ok', '0'), b('mtu_ok', '1'),
    a('last_success_timestamp_seconds', '2000'), b('last_success_timestamp_seconds', '2000'),
    a('rtt_seconds', '0.002'), b('rtt_seconds', '0.003'),
  ]);
  // A new underlay IP is a new label set (the old one goes); a peer gone goes.
  retarget(peers.get('10.244.3.0/24')!, { key: '10.244.3.0/24', overlay: 0, publicIp: parseIp4('172.30.0.33') });
  peers.delete('10.244.1.0/24');
  assert.deepEqual(peerLines(), [b('reachable', '1'), c('reachable', '0', '172.30.0.33'), b('mtu_ok', '1'), b('last_success_timestamp_seconds', '2000'), b('rtt_seconds', '0.003')]);
  // Back again (a new record): at the end of the prober's map, so last.
  peers.set('10.244.1.0/24', peer('10.244.1.0/24', '172.30.0.1', judged(4)));
  assert.deepEqual(peerLines().slice(0, 3), [b('reachable', '1'), c('reachable', '0', '172.30.0.33'), a('reachable', '1')]);
});

// Rendered by 0218697 (health and targets in separate maps) from the state in the test below.
const GOLDEN = `# HELP twill_peer_reachable 1 when the peer answers probes over the overlay, 0 when it stopped (absent until judged).
# TYPE twill_peer_reachable gauge
twill_peer_reachable{peer_subnet="10.244.2.0/24",peer_ip="172.30.0.12"} 1
twill_peer_reachable{peer_subnet="10.244.10.0/24",peer_ip="203.0.113.200"} 1
twill_peer_reachable{peer_subnet="10.244.4.0/24",peer_ip="172.30.0.14"} 0
twill_peer_reachable{peer_subnet="10.244.6.0/24",peer_ip="10.0.0.1"} 0
# HELP twill_peer_mtu_ok 1 when full-size (pod MTU, DF) probes reach the peer and come back, 0 when only small ones do.
# TYPE twill_peer_mtu_ok gauge
twill_peer_mtu_ok{peer_subnet="10.244.2.0/24",peer_ip="172.30.0.12"} 1
twill_peer_mtu_ok{peer_subnet="10.244.10.0/24",peer_ip="203.0.113.200"} 0
twill_peer_mtu_ok{peer_subnet="10.244.4.0/24",peer_ip="172.30.0.14"} 1
# HELP twill_peer_last_success_timestamp_seconds When the peer last answered a probe (unix time).
# TYPE twill_peer_last_success_timestamp_seconds gauge
twill_peer_last_success_timestamp_seconds{peer_subnet="10.244.2.0/24",peer_ip="172.30.0.12"} 1000000
twill_peer_last_success_timestamp_seconds{peer_subnet="10.244.10.0/24",peer_ip="203.0.113.200"} 1000000
twill_peer_last_success_timestamp_seconds{peer_subnet="10.244.4.0/24",peer_ip="172.30.0.14"} 999000
# HELP twill_peer_rtt_seconds Round trip of the last answered small probe to the peer.
# TYPE twill_peer_rtt_seconds gauge
twill_peer_rtt_seconds{peer_subnet="10.244.2.0/24",peer_ip="172.30.0.12"} 0.0005
twill_peer_rtt_seconds{peer_subnet="10.244.10.0/24",peer_ip="203.0.113.200"} 0.0007
twill_peer_rtt_seconds{peer_subnet="10.244.4.0/24",peer_ip="172.30.0.14"} 0.0006
# HELP twill_peers_health Peers by probe status (ok, mtu, unreachable, unknown).
# TYPE twill_peers_health gauge
twill_peers_health{status="unknown"} 2
twill_peers_health{status="ok"} 1
twill_peers_health{status="mtu"} 1
twill_peers_health{status="unreachable"} 1
# HELP twill_probe_rtt_seconds Round trip of answered small probes, all peers.
# TYPE twill_probe_rtt_seconds histogram
twill_probe_rtt_seconds_bucket{le="0.0001"} 0
twill_probe_rtt_seconds_bucket{le="0.00025"} 0
twill_probe_rtt_seconds_bucket{le="0.0005"} 1
twill_probe_rtt_seconds_bucket{le="0.001"} 1
twill_probe_rtt_seconds_bucket{le="0.0025"} 1
twill_probe_rtt_seconds_bucket{le="0.005"} 2
twill_probe_rtt_seconds_bucket{le="0.01"} 2
twill_probe_rtt_seconds_bucket{le="0.025"} 2
twill_probe_rtt_seconds_bucket{le="0.05"} 2
twill_probe_rtt_seconds_bucket{le="0.1"} 2
twill_probe_rtt_seconds_bucket{le="0.25"} 2
twill_probe_rtt_seconds_bucket{le="0.5"} 2
twill_probe_rtt_seconds_bucket{le="1"} 2
twill_probe_rtt_seconds_bucket{le="+Inf"} 2
twill_probe_rtt_seconds_sum 0.0035
twill_probe_rtt_seconds_count 2
# HELP twill_probes_sent_total Probes sent, by size (small, full).
# TYPE twill_probes_sent_total counter
twill_probes_sent_total{size="small"} 10
twill_probes_sent_total{size="full"} 10
# HELP twill_probe_replies_total Probe replies matched to a probe of ours.
# TYPE twill_probe_replies_total counter
twill_probe_replies_total 18
# HELP twill_probe_replies_unmatched_total Datagrams on the prober socket that matched no probe of ours (late, forged, wrong source or size).
# TYPE twill_probe_replies_unmatched_total counter
twill_probe_replies_unmatched_total 1
# HELP twill_probe_send_errors_total Probes the kernel refused to send (e.g. EMSGSIZE: a local MTU below the pod MTU).
# TYPE twill_probe_send_errors_total counter
twill_probe_send_errors_total 2
# HELP twill_probe_responses_total Peers' probes this host's responder answered.
# TYPE twill_probe_responses_total counter
twill_probe_responses_total 7
# HELP twill_probe_dropped_total Datagrams the responder dropped, by reason.
# TYPE twill_probe_dropped_total counter
twill_probe_dropped_total{reason="short"} 3
twill_probe_dropped_total{reason="long"} 0
twill_probe_dropped_total{reason="magic"} 2
twill_probe_dropped_total{reason="version"} 0
twill_probe_dropped_total{reason="kind"} 0
twill_probe_dropped_total{reason="flags"} 0
twill_probe_dropped_total{reason="padding"} 0
twill_probe_dropped_total{reason="source"} 5
twill_probe_dropped_total{reason="not-request"} 0
twill_probe_dropped_total{reason="rate"} 1
`;

// The whole exposition, byte for byte, as rendered from the separate health and target maps
// before the peer records (0218697): the records change where things are kept, not the text.
test('the probe families render exactly as before the peer records', () => {
  const judged = (status: PeerHealth['status'], reachable: boolean | null, mtuOk: boolean | null, rttMs: number | null, lastSuccess: number | null): PeerHealth => Object.assign(newPeerHealth(0), { status, reachable, mtuOk, rttMs, lastSuccess });
  const peers = [
    newProbePeer({ key: '10.244.2.0/24', overlay: 0, publicIp: parseIp4('172.30.0.12') }, judged('ok', true, true, 0.5, 1_000_000_000)),
    newProbePeer({ key: '10.244.10.0/24', overlay: 0, publicIp: parseIp4('203.0.113.200') }, judged('mtu', true, false, 0.7, 1_000_000_000)),
    newProbePeer({ key: '10.244.4.0/24', overlay: 0, publicIp: parseIp4('172.30.0.14') }, judged('unreachable', false, true, 0.6, 999_000_000)),
    newProbePeer({ key: '10.244.5.0/24', overlay: 0, publicIp: parseIp4('172.30.0.15') }, newPeerHealth(0)),
    newProbePeer({ key: '10.244.6.0/24', overlay: 0, publicIp: parseIp4('10.0.0.1') }, judged('unknown', false, null, null, null)),
  ];
  const { m, observeRtt } = withProbeMetrics(peers);
  observeRtt(0.5);
  observeRtt(3);
  assert.equal(m.render(), GOLDEN);
});

test("a peer's label text is made by the first scrape that lists it, kept on its record, made again after its PublicIP changes", () => {
  const ok = (): PeerHealth => Object.assign(newPeerHealth(0), { status: 'ok', reachable: true, mtuOk: true, rttMs: 1, lastSuccess: 5000 });
  const a = newProbePeer({ key: '10.244.1.0/24', overlay: 0, publicIp: parseIp4('172.30.0.1') }, ok());
  const unjudged = newProbePeer({ key: '10.244.2.0/24', overlay: 0, publicIp: parseIp4('172.30.0.2') }, newPeerHealth(0));
  const m = new Metrics();
  registerProbeMetrics(m, { peers: () => [a, unjudged], proberStats: () => undefined, responderStats: () => undefined });
  assert.equal(a.label, undefined, 'none before a scrape');
  m.render();
  assert.equal(a.label, '{peer_subnet="10.244.1.0/24",peer_ip="172.30.0.1"}');
  assert.equal(unjudged.label, undefined, 'none for a peer the scrape does not list');
  assert.equal(retarget(a, { key: a.key, overlay: 0, publicIp: parseIp4('172.30.0.1') }), false, 'same addresses: nothing changes');
  assert.equal(a.label, '{peer_subnet="10.244.1.0/24",peer_ip="172.30.0.1"}', 'and the text is kept');
  assert.equal(retarget(a, { key: a.key, overlay: 0, publicIp: parseIp4('172.30.0.101') }), true);
  assert.equal(a.label, undefined, 'a new PublicIP drops the text made for the old one');
  const body = m.render();
  assert.equal(a.label, '{peer_subnet="10.244.1.0/24",peer_ip="172.30.0.101"}');
  assert.equal((body.match(/peer_ip="172\.30\.0\.101"/g) ?? []).length, 4, 'all four gauges carry the new IP');
  assert.doesNotMatch(body, /peer_ip="172\.30\.0\.1"/);
});

