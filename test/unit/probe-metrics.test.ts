// Per-peer probe metrics as scraped, and `twillctl status --peers` reading them back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../src/observe/metrics';
import { parseIp4 } from '../../src/ip/ipv4';
import { registerProbeMetrics } from '../../src/probe/metrics';
import { newPeerHealth, type PeerHealth } from '../../src/probe/health';
import type { ProbeTarget } from '../../src/probe/prober';
import { parsePrometheus } from '../../src/ctl/status';
import { peerRows, renderPeers } from '../../src/ctl/peers';

test('per-peer gauges, status counts and drop counters render; status --peers reads them back', () => {
  const health = new Map<string, PeerHealth>([
    ['10.244.2.0/24', { ...newPeerHealth(0), status: 'ok', reachable: true, mtuOk: true, rttMs: 0.5, lastSuccess: 1_000_000_000 }],
    ['10.244.3.0/24', { ...newPeerHealth(0), status: 'mtu', reachable: true, mtuOk: false, rttMs: 0.7, lastSuccess: 1_000_000_000 }],
    ['10.244.4.0/24', { ...newPeerHealth(0), status: 'unreachable', reachable: false, mtuOk: true, rttMs: 0.6, lastSuccess: 999_000_000 }],
    ['10.244.5.0/24', newPeerHealth(0)],
  ]);
  const targets = new Map<string, ProbeTarget>([...health.keys()].map((k, i) => [k, { key: k, overlay: 0, publicIp: parseIp4(`172.30.0.${12 + i}`) }]));
  const m = new Metrics();
  const dropped = { short: 3, long: 0, magic: 2, version: 0, kind: 0, flags: 0, padding: 0, source: 5, 'not-request': 0, rate: 1 };
  const { observeRtt } = registerProbeMetrics(m, {
    health: () => health,
    target: (k) => targets.get(k),
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

// Scrapes that only change values write values into the series already there; any change of
// which peers are judged, their order or their underlay IP rebuilds the families. Either way
// the lines are those of a rebuild: health-map order, only judged values present.
test('per-peer series across scrapes: values, a peer judged later, an IP change, a peer gone', () => {
  const judged = (rttMs: number, ok = true): PeerHealth => ({ ...newPeerHealth(0), status: ok ? 'ok' : 'unreachable', reachable: ok, mtuOk: ok, rttMs, lastSuccess: 2_000_000 });
  const health = new Map<string, PeerHealth>([
    ['10.244.1.0/24', judged(1)],
    ['10.244.2.0/24', newPeerHealth(0)],
    ['10.244.3.0/24', { ...newPeerHealth(0), reachable: false }],
  ]);
  const ips = new Map([['10.244.1.0/24', '172.30.0.1'], ['10.244.2.0/24', '172.30.0.2'], ['10.244.3.0/24', '172.30.0.3']]);
  const m = new Metrics();
  registerProbeMetrics(m, {
    health: () => health,
    target: (k) => (ips.has(k) ? { key: k, overlay: 0, publicIp: parseIp4(ips.get(k)!) } : undefined),
    proberStats: () => undefined,
    responderStats: () => undefined,
  });
  const peerLines = (): string[] => m.render().split('\n').filter((l) => /^twill_peer_[a-z_]+\{/.test(l));
  const l = (name: string, subnet: string, ip: string, v: string): string => `twill_peer_${name}{peer_subnet="${subnet}",peer_ip="${ip}"} ${v}`;
  const a = (name: string, v: string) => l(name, '10.244.1.0/24', '172.30.0.1', v);
  const b = (name: string, v: string) => l(name, '10.244.2.0/24', '172.30.0.2', v);
  const c = (name: string, v: string, ip = '172.30.0.3') => l(name, '10.244.3.0/24', ip, v);

  assert.deepEqual(peerLines(), [a('reachable', '1'), c('reachable', '0'), a('mtu_ok', '1'), a('last_success_timestamp_seconds', '2000'), a('rtt_seconds', '0.001')]);
  health.set('10.244.1.0/24', judged(2, false));
  assert.deepEqual(peerLines(), [a('reachable', '0'), c('reachable', '0'), a('mtu_ok', '0'), a('last_success_timestamp_seconds', '2000'), a('rtt_seconds', '0.002')]);
  // Judged now: in health-map order, between the other two, not appended.
  health.set('10.244.2.0/24', judged(3));
  assert.deepEqual(peerLines(), [
    a('reachable', '0'), b('reachable', '1'), c('reachable', '0'),
    a('mtu_ok', '0'), b('mtu_ok', '1'),
    a('last_success_timestamp_seconds', '2000'), b('last_success_timestamp_seconds', '2000'),
    a('rtt_seconds', '0.002'), b('rtt_seconds', '0.003'),
  ]);
  // A new underlay IP is a new label set (the old one goes); a peer gone from health goes.
  ips.set('10.244.3.0/24', '172.30.0.33');
  health.delete('10.244.1.0/24');
  assert.deepEqual(peerLines(), [b('reachable', '1'), c('reachable', '0', '172.30.0.33'), b('mtu_ok', '1'), b('last_success_timestamp_seconds', '2000'), b('rtt_seconds', '0.003')]);
  // Back again: at the end of the health map, so last.
  health.set('10.244.1.0/24', judged(4));
  assert.deepEqual(peerLines().slice(0, 3), [b('reachable', '1'), c('reachable', '0', '172.30.0.33'), a('reachable', '1')]);
});
