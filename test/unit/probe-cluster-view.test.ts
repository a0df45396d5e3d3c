// Health summaries (compact, strict decode) and the aggregation `twillctl check` prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrefix4 } from '../../src/ip/ipv4';
import { newPeerHealth, type PeerHealth, type PeerStatus } from '../../src/probe/health';
import { buildSummary, decodeSummary, encodeSummary, healthKey, sameContent, type HealthSummary } from '../../src/probe/summary';
import { buildCheckReport, checkExitCode } from '../../src/probe/cluster-view';
import { renderCheck } from '../../src/ctl/check';

const H = [
  { name: 'h1', publicIp: '172.30.0.11', subnet: '10.244.1.0/24' },
  { name: 'h2', publicIp: '172.30.0.12', subnet: '10.244.2.0/24' },
  { name: 'h3', publicIp: '172.30.0.13', subnet: '10.244.3.0/24' },
];

function peer(status: PeerStatus, since = 5000): PeerHealth {
  return { ...newPeerHealth(since), status };
}

/** h's summary, with `statusTo(other)` for each other host. */
function summaryOf(i: number, statusTo: (j: number) => PeerStatus, at = 100_000): HealthSummary {
  const peers = H.map((h, j) => ({ key: h.subnet, health: peer(statusTo(j)) })).filter((_, j) => j !== i);
  return buildSummary({ ...H[i]!, mtu: 1450 }, peers, 10_000, at * 1000);
}

const leases = H.map(({ subnet, publicIp }) => ({ subnet, publicIp }));

test('summary: compact, round-trips, content comparison ignores the write time, key outside subnets/', () => {
  const s = summaryOf(0, (j) => (j === 2 ? 'mtu' : 'ok'));
  assert.deepEqual(s.bad, [{ subnet: '10.244.3.0/24', kind: 'mtu', since: 5 }]);
  assert.equal(s.ok, 1);
  assert.ok(encodeSummary(s).length < 300);
  assert.deepEqual(decodeSummary(encodeSummary(s)), s);
  assert.ok(sameContent(s, { ...s, at: s.at + 60 }));
  assert.ok(!sameContent(s, { ...s, ok: 2 }));
  // Every field but `at` counts (a field added later and not compared fails here).
  for (const k of Object.keys(s) as Array<keyof HealthSummary>) {
    if (k === 'at') continue;
    const other = k === 'bad' ? [] : typeof s[k] === 'number' ? (s[k] as number) + 1 : `${String(s[k])}x`;
    assert.ok(!sameContent(s, { ...s, [k]: other }), k);
  }
  for (const [k, v] of [['subnet', '10.244.4.0/24'], ['kind', 'unreachable'], ['since', 6]] as const) {
    assert.ok(!sameContent(s, { ...s, bad: [{ ...s.bad[0]!, [k]: v }] }), `bad.${k}`);
  }
  assert.ok(sameContent(s, { ...s, bad: [{ ...s.bad[0]! }] }));
  assert.equal(healthKey('/coreos.com/network', parsePrefix4('10.244.3.0/24')), '/coreos.com/network/health/10.244.3.0-24');
  for (const bad of ['nope', '[]', '{"v":2}', encodeSummary({ ...s, publicIp: 'x' }), encodeSummary({ ...s, peers: -1 }), JSON.stringify({ ...s, bad: [{ subnet: 'a', kind: 'slow', since: 1 }] })]) {
    assert.throws(() => decodeSummary(bad), (e: Error & { code?: string }) => e.code === 'ERR_HEALTH_SUMMARY', bad);
  }
});

test('all healthy: exit 0', () => {
  const summaries = new Map(H.map((h, i) => [h.subnet, summaryOf(i, () => 'ok')]));
  const r = buildCheckReport({ leases, summaries, nowS: 100_010, staleAfterS: 180 });
  assert.equal(r.healthy, true);
  assert.equal(r.complete, true);
  assert.equal(checkExitCode(r), 0);
  assert.deepEqual(r.problems, []);
});

test('one host behind a small MTU: every path to and from it is mtu, and it is named', () => {
  const bad = (i: number) => (j: number) => (i === 2 || j === 2 ? 'mtu' : 'ok') as PeerStatus;
  const summaries = new Map(H.map((h, i) => [h.subnet, summaryOf(i, bad(i))]));
  const r = buildCheckReport({ leases, summaries, nowS: 100_010, staleAfterS: 180 });
  assert.equal(checkExitCode(r), 1);
  assert.equal(r.problems.length, 4);
  assert.ok(r.problems.every((p) => p.kind === 'mtu'));
  assert.deepEqual(r.suspects, [{ host: H[2], kinds: ['mtu'] }]);
  assert.deepEqual(r.hosts.map((h) => h.mtu), [1, 1, 2]);
});

test('one host cut off: the others report it unreachable; its own stale or unchanged report does not hide it', () => {
  const summaries = new Map<string, HealthSummary | Error>(H.map((h, i) => [h.subnet, summaryOf(i, (j) => (j === 2 ? 'unreachable' : 'ok'))]));
  summaries.set(H[2]!.subnet, summaryOf(2, () => 'ok', 99_000)); // written before the cut
  const r = buildCheckReport({ leases, summaries, nowS: 100_010, staleAfterS: 180 });
  assert.equal(checkExitCode(r), 1);
  assert.deepEqual(r.problems.map((p) => `${p.from.name}>${p.to.name}:${p.kind}`), ['h1>h3:unreachable', 'h2>h3:unreachable']);
  assert.equal(r.hosts[2]!.report, 'stale');
  assert.deepEqual(r.suspects, [{ host: H[2], kinds: ['unreachable'] }]);
  // Cut off before it could publish what it sees: its last report is fresh and all ok.
  summaries.set(H[2]!.subnet, summaryOf(2, () => 'ok'));
  const r2 = buildCheckReport({ leases, summaries, nowS: 100_010, staleAfterS: 180 });
  assert.deepEqual(r2.suspects, [{ host: H[2], kinds: ['unreachable'] }]);
});

test('two broken paths that share no host name no suspect', () => {
  const summaries = new Map(H.map((h, i) => [h.subnet, summaryOf(i, (j) => (i === 0 && j === 1 ? 'unreachable' : 'ok'))]));
  const r = buildCheckReport({ leases, summaries, nowS: 100_010, staleAfterS: 180 });
  assert.equal(r.problems.length, 1);
  assert.deepEqual(r.suspects, []);
});

test('a missing, unreadable or not-yet-judged report is incomplete (exit 3), not healthy', () => {
  const base = new Map<string, HealthSummary | Error>(H.map((h, i) => [h.subnet, summaryOf(i, () => 'ok')]));
  const missing = new Map(base);
  missing.delete(H[1]!.subnet);
  let r = buildCheckReport({ leases, summaries: missing, nowS: 100_010, staleAfterS: 180 });
  assert.equal(r.hosts[1]!.report, 'missing');
  assert.equal(r.hosts[1]!.name, '172.30.0.12', 'without a report the host is named by its underlay IP');
  assert.equal(checkExitCode(r), 3);
  const invalid = new Map(base).set(H[1]!.subnet, new Error('bad'));
  assert.equal(buildCheckReport({ leases, summaries: invalid, nowS: 100_010, staleAfterS: 180 }).hosts[1]!.report, 'invalid');
  const unknown = new Map(base).set(H[0]!.subnet, summaryOf(0, () => 'unknown'));
  r = buildCheckReport({ leases, summaries: unknown, nowS: 100_010, staleAfterS: 180 });
  assert.equal(checkExitCode(r), 3);
  // Written before the host had listed its peers: nothing bad in it, and nothing vouched for.
  const early = new Map(base).set(H[0]!.subnet, buildSummary({ ...H[0]!, mtu: 1450 }, [], 10_000, 100_000 * 1000));
  r = buildCheckReport({ leases, summaries: early, nowS: 100_010, staleAfterS: 180 });
  assert.equal(r.hosts[0]!.peers, 0);
  assert.equal(r.complete, false, 'a report with fewer peers than other leases is incomplete');
  assert.equal(checkExitCode(r), 3);
});

test('check output: the matrix, each broken path with its kind and age, the likely cause, the verdict', () => {
  const bad = (i: number) => (j: number) => (i === 2 || j === 2 ? 'mtu' : 'ok') as PeerStatus;
  const summaries = new Map(H.map((h, i) => [h.subnet, summaryOf(i, bad(i))]));
  const text = renderCheck(buildCheckReport({ leases, summaries, nowS: 100_010, staleAfterS: 180 }), 100_010);
  assert.match(text, /^h1\s+-\s+ok\s+MTU$/m);
  assert.match(text, /✗ h1 \(172\.30\.0\.11, 10\.244\.1\.0\/24\) → h3 \(172\.30\.0\.13, 10\.244\.3\.0\/24\): mtu: small probes answered, full-size \(1450-byte, DF\) probes lost, for 1d3h/);
  assert.match(text, /likely cause: h3 \(172\.30\.0\.13, 10\.244\.3\.0\/24\) — every other host reports mtu to it/);
  assert.match(text, /UNHEALTHY: 4 of 6 paths broken \(unreachable 0, mtu 4\)/);
  const healthy = renderCheck(buildCheckReport({ leases, summaries: new Map(H.map((h, i) => [h.subnet, summaryOf(i, () => 'ok')])), nowS: 100_010, staleAfterS: 180 }), 100_010);
  assert.match(healthy, /healthy: all 6 paths answer small and full-size probes/);
});

test('check output: the row of a host nobody reaches is shown as unknown, not as its last (pre-cut) report', () => {
  const summaries = new Map(H.map((h, i) => [h.subnet, summaryOf(i, (j) => (j === 2 ? 'unreachable' : 'ok'))]));
  summaries.set(H[2]!.subnet, summaryOf(2, () => 'ok'));
  const text = renderCheck(buildCheckReport({ leases, summaries, nowS: 100_010, staleAfterS: 180 }), 100_010);
  assert.match(text, /^h3\s+\?\s+\?\s+-$/m);
  assert.match(text, /^h1\s+-\s+ok\s+UNREACH$/m);
});

test('check output at scale: one broken host among many is one line each way, not one per path', () => {
  const many = Array.from({ length: 8 }, (_, i) => ({ name: `n${i}`, publicIp: `172.30.1.${i + 1}`, subnet: `10.244.${100 + i}.0/24` }));
  const sums = new Map(
    many.map((h, i) => {
      const peers = many.filter((_, j) => j !== i).map((p) => ({ key: p.subnet, health: peer(i === 7 || p.name === 'n7' ? 'mtu' : 'ok') }));
      return [h.subnet, buildSummary({ ...h, mtu: 1450 }, peers, 10_000, 100_000_000)] as [string, HealthSummary];
    }),
  );
  const r = buildCheckReport({ leases: many.map(({ subnet, publicIp }) => ({ subnet, publicIp })), summaries: sums, nowS: 100_010, staleAfterS: 180 });
  assert.equal(r.problems.length, 14);
  const text = renderCheck(r, 100_010);
  const lines = text.split('\n').filter((l) => l.startsWith('  ✗'));
  assert.deepEqual(lines, [
    '  ✗ 7 hosts (n0, n1, n2 and 4 more) → n7 (172.30.1.8, 10.244.107.0/24): mtu: small probes answered, full-size (1450-byte, DF) probes lost',
    '  ✗ n7 (172.30.1.8, 10.244.107.0/24) → 7 hosts (n0, n1, n2 and 4 more): mtu: small probes answered, full-size (1450-byte, DF) probes lost',
  ]);
});
