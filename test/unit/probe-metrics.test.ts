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

test('per-peer gauges, status counts and drop counters render; status --peers reads them back', () => {
  const health: Array<[string, PeerHealth]> = [
    ['10.244.2.0/24', { ...newPeerHealth(0), status: 'ok', reachable: true, mtuOk: true, rttMs: 0.5, lastSuccess: 1_000_000_000 }],
    ['10.244.3.0/24', { ...newPeerHealth(0), status: 'mtu', reachable: true, mtuOk: false, rttMs: 0.7, lastSuccess: 1_000_000_000 }],
    ['10.244.4.0/24', { ...newPeerHealth(0), status: 'unreachable', reachable: false, mtuOk: true, rttMs: 0.6, lastSuccess: 999_000_000 }],
    ['10.244.5.0/24', newPeerHealth(0)],
  ];
  const peers = health.map(([key, h], i) => newProbePeer({ key, overlay: 0, publicIp: parseIp4(`172.30.0.${12 + i}`) }, h));
  const m = new Metrics();
  const dropped = { short: 3, long: 0, magic: 2, version: 0, kind: 0, flags: 0, padding: 0, source: 5, 'not-request': 0, rate: 1 };
  const { observeRtt } = registerProbeMetrics(m, {
    peers: () => peers,
    proberStats: () => ({ sentSmall: 10, sentFull: 10, replies: 18, unmatched: 1, sendErrors: 2 }),
    responderStats: () => ({ answered: 7, dropped }),
  });
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
