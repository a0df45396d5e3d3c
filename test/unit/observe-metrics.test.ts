import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Metrics, MetricError, createDaemonMetrics, labelText, PROGRAMMING_LATENCY_BUCKETS } from '../../src/observe/metrics';

test('unlabelled counter and gauge render HELP, TYPE and a 0 sample before any event', () => {
  const m = new Metrics();
  const c = m.counter('a_total', 'Things counted.');
  m.gauge('b', 'A level.');
  assert.equal(m.render(), '# HELP a_total Things counted.\n# TYPE a_total counter\na_total 0\n# HELP b A level.\n# TYPE b gauge\nb 0\n');
  c.inc();
  c.inc(2.5);
  assert.match(m.render(), /^a_total 3\.5$/m);
});

test('labelled series render in first-use order with labels in declared order', () => {
  const m = new Metrics();
  const c = m.counter('req_total', 'Requests.', ['code', 'method']);
  assert.equal(m.render(), '# HELP req_total Requests.\n# TYPE req_total counter\n');
  c.inc({ method: 'GET', code: '200' });
  c.inc({ code: '500', method: 'POST' }, 3);
  c.inc({ method: 'GET', code: '200' });
  assert.equal(
    m.render(),
    '# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{code="200",method="GET"} 2\nreq_total{code="500",method="POST"} 3\n',
  );
});

test('label values escape backslash, double quote and newline; HELP escapes backslash and newline', () => {
  const m = new Metrics();
  const g = m.gauge('g', 'line one\nback\\slash "quoted"', ['v']);
  g.set({ v: 'a\\b"c"\nd' }, 1);
  assert.equal(m.render(), '# HELP g line one\\nback\\\\slash "quoted"\n# TYPE g gauge\ng{v="a\\\\b\\"c\\"\\nd"} 1\n');
});

test('gauge set/inc/dec/remove/reset and special float values', () => {
  const m = new Metrics();
  const g = m.gauge('g', 'h', ['k']);
  g.set({ k: 'a' }, 5);
  g.inc({ k: 'a' });
  g.dec({ k: 'a' }, 0.5);
  g.set({ k: 'inf' }, Infinity);
  g.set({ k: 'ninf' }, -Infinity);
  g.set({ k: 'nan' }, NaN);
  assert.match(m.render(), /^g\{k="a"\} 5\.5$/m);
  assert.match(m.render(), /^g\{k="inf"\} \+Inf$/m);
  assert.match(m.render(), /^g\{k="ninf"\} -Inf$/m);
  assert.match(m.render(), /^g\{k="nan"\} NaN$/m);
  g.remove({ k: 'a' });
  assert.doesNotMatch(m.render(), /k="a"/);
  g.reset();
  assert.equal(m.render(), '# HELP g h\n# TYPE g gauge\n');
  const u = m.gauge('u', 'h');
  u.set(7);
  u.dec();
  assert.match(m.render(), /^u 6$/m);
});

test('histogram buckets are cumulative, inclusive at the bound, end in +Inf = _count', () => {
  const m = new Metrics();
  const h = m.histogram('lat_seconds', 'Latency.', [0.5, 1, 10]);
  for (const v of [0.25, 0.5, 1, 4, 50]) h.observe(v);
  assert.equal(
    m.render(),
    [
      '# HELP lat_seconds Latency.',
      '# TYPE lat_seconds histogram',
      'lat_seconds_bucket{le="0.5"} 2',
      'lat_seconds_bucket{le="1"} 3',
      'lat_seconds_bucket{le="10"} 4',
      'lat_seconds_bucket{le="+Inf"} 5',
      'lat_seconds_sum 55.75',
      'lat_seconds_count 5',
      '',
    ].join('\n'),
  );
});

test('labelled histogram puts le after the other labels and keeps series apart', () => {
  const m = new Metrics();
  const h = m.histogram('d', 'h', [1, Infinity], ['op']);
  h.observe({ op: 'put' }, 0.5);
  h.observe({ op: 'get' }, 2);
  const out = m.render();
  assert.match(out, /^d_bucket\{op="put",le="1"\} 1$/m);
  assert.match(out, /^d_bucket\{op="put",le="\+Inf"\} 1$/m);
  assert.match(out, /^d_bucket\{op="get",le="1"\} 0$/m);
  assert.match(out, /^d_bucket\{op="get",le="\+Inf"\} 1$/m);
  assert.match(out, /^d_sum\{op="get"\} 2$/m);
  assert.match(out, /^d_count\{op="put"\} 1$/m);
  // An explicit +Inf bucket is not rendered twice.
  assert.equal(out.match(/le="\+Inf"/g)?.length, 2);
});

test('registration and usage errors are MetricError with code ERR_METRIC', () => {
  const m = new Metrics();
  const isMetricError = (err: unknown): boolean => err instanceof MetricError && err.code === 'ERR_METRIC';
  m.counter('dup_total', 'h');
  assert.throws(() => m.gauge('dup_total', 'h'), isMetricError);
  assert.throws(() => m.counter('bad-name', 'h'), isMetricError);
  assert.throws(() => m.counter('x_total', 'h', ['bad-label']), isMetricError);
  assert.throws(() => m.counter('y_total', 'h', ['__reserved']), isMetricError);
  assert.throws(() => m.counter('z_total', 'h', ['a', 'a']), isMetricError);
  assert.throws(() => m.histogram('h1', 'h', [1], ['le']), isMetricError);
  assert.throws(() => m.histogram('h2', 'h', [2, 1]), isMetricError);
  assert.throws(() => m.histogram('h3', 'h', [1, 1]), isMetricError);
  assert.throws(() => m.histogram('h4', 'h', []), isMetricError);
  assert.throws(() => m.histogram('h5', 'h', [NaN]), isMetricError);
  const c = m.counter('c_total', 'h', ['kind']);
  assert.throws(() => c.inc(), isMetricError); // missing label
  assert.throws(() => c.inc({ kind: 'a', extra: 'b' } as unknown as { kind: string }), isMetricError);
  assert.throws(() => c.inc({ kind: 'a' }, -1), isMetricError);
  assert.doesNotThrow(() => c.inc({ kind: 'a' }, 0));
});

// A line-level check of the 0.0.4 text format: comment lines well formed, every sample's
// family declared by a TYPE line before it, sample syntax valid, names unique per family.
function assertValidExposition(text: string): Map<string, string> {
  assert.ok(text.endsWith('\n'));
  const types = new Map<string, string>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$/;
  for (const line of text.slice(0, -1).split('\n')) {
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      assert.ok(!types.has(t[1]!), `family ${t[1]} declared twice`);
      types.set(t[1]!, t[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const s = sample.exec(line);
    assert.ok(s, `invalid sample line: ${line}`);
    const name = s[1]!;
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(family), `sample ${name} before its TYPE line`);
  }
  return types;
}

test('createDaemonMetrics registers every twilld metric with valid exposition output', () => {
  const m = new Metrics();
  const d = createDaemonMetrics(m);
  try {
    d.peers.set(3);
    d.programmedEntries.set({ kind: 'route' }, 3);
    d.programmingLatency.observe(0.004);
    d.resyncs.inc({ reason: 'timer' });
    d.driftRepaired.inc({ kind: 'fdb' });
    d.leasesSkipped.inc({ reason: 'invalid_json' });
    d.leaseRenewals.inc({ result: 'ok' });
    d.etcdErrors.inc({ op: 'watch' });
    d.dataplaneErrors.inc({ kind: 'neigh' });
    d.ready.set(1);
    d.setLease({ subnet: '10.244.7.0/24', publicIp: '192.168.50.11', vtepMac: '0e:00:00:00:00:01' });
    const text = m.render();
    const types = assertValidExposition(text);
    const expected: Record<string, string> = {
      twill_peers: 'gauge',
      twill_programmed_entries: 'gauge',
      twill_programming_latency_seconds: 'histogram',
      twill_resyncs_total: 'counter',
      twill_drift_repaired_total: 'counter',
      twill_leases_skipped_total: 'counter',
      twill_lease_renewals_total: 'counter',
      twill_etcd_errors_total: 'counter',
      twill_dataplane_errors_total: 'counter',
      twill_ready: 'gauge',
      twill_lease_info: 'gauge',
      process_resident_memory_bytes: 'gauge',
      process_start_time_seconds: 'gauge',
      process_cpu_seconds_total: 'counter',
      nodejs_eventloop_lag_p99_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) assert.equal(types.get(name), type, name);

    assert.match(text, /^twill_peers 3$/m);
    assert.match(text, /^twill_programmed_entries\{kind="route"\} 3$/m);
    for (const kind of ['neigh', 'fdb', 'device', 'address']) {
      assert.match(text, new RegExp(`^twill_programmed_entries\\{kind="${kind}"\\} 0$`, 'm'));
    }
    assert.match(text, /^twill_lease_renewals_total\{result="error"\} 0$/m);
    assert.match(text, /^twill_programming_latency_seconds_bucket\{le="0.001"\} 0$/m);
    assert.match(text, /^twill_programming_latency_seconds_bucket\{le="0.005"\} 1$/m);
    assert.match(text, /^twill_programming_latency_seconds_bucket\{le="10"\} 1$/m);
    assert.equal(PROGRAMMING_LATENCY_BUCKETS[0], 0.001);
    assert.equal(PROGRAMMING_LATENCY_BUCKETS[PROGRAMMING_LATENCY_BUCKETS.length - 1], 10);
    assert.match(text, /^twill_lease_info\{subnet="10.244.7.0\/24",public_ip="192.168.50.11",vtep_mac="0e:00:00:00:00:01"\} 1$/m);

    const rss = Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1]);
    assert.ok(rss > 1_000_000, `rss ${rss}`);
    const startTime = Number(/^process_start_time_seconds (\S+)$/m.exec(text)?.[1]);
    assert.ok(Math.abs(startTime - (Date.now() / 1000 - process.uptime())) < 2);
  } finally {
    d.stop();
  }
});

test('setLease replaces the info series and null removes it', () => {
  const m = new Metrics();
  const d = createDaemonMetrics(m);
  try {
    d.setLease({ subnet: '10.244.1.0/24', publicIp: '10.0.0.1', vtepMac: '0e:00:00:00:00:01' });
    d.setLease({ subnet: '10.244.2.0/24', publicIp: '10.0.0.1', vtepMac: '0e:00:00:00:00:01' });
    const text = m.render();
    assert.equal(text.match(/^twill_lease_info\{/gm)?.length, 1);
    assert.match(text, /subnet="10.244.2.0\/24"/);
    d.setLease(null);
    assert.doesNotMatch(m.render(), /^twill_lease_info\{/m);
  } finally {
    d.stop();
  }
});

test('process_cpu_seconds_total never decreases across renders', () => {
  const m = new Metrics();
  const d = createDaemonMetrics(m);
  try {
    const read = (): number => Number(/^process_cpu_seconds_total (\S+)$/m.exec(m.render())?.[1]);
    const a = read();
    let x = 0;
    for (let i = 0; i < 2e6; i++) x += i;
    assert.ok(x > 0);
    const b = read();
    assert.ok(a > 0 && b >= a, `${a} -> ${b}`);
  } finally {
    d.stop();
  }
});

// The exposition bytes pinned, through everything that keeps a series' cached label text:
// reset then set again (same and new order), remove then set, histograms reset and observed
// again, escaping.
test('render bytes are pinned across reset, remove and re-set', () => {
  const m = new Metrics();
  const c = m.counter('c_total', 'Counted.', ['a', 'b']);
  const g = m.gauge('g', 'A level.', ['p']);
  const h = m.histogram('h_seconds', 'Lat.', [0.5, 1], ['op']);
  c.inc({ b: 'q"\\\n', a: '1' }, 2);
  g.set({ p: 'y' }, 1.5);
  g.set({ p: 'x' }, -Infinity);
  h.observe({ op: 'get' }, 0.75);
  const head = ['# HELP c_total Counted.', '# TYPE c_total counter', 'c_total{a="1",b="q\\"\\\\\\n"} 2', '# HELP g A level.', '# TYPE g gauge'];
  assert.equal(
    m.render(),
    [...head, 'g{p="y"} 1.5', 'g{p="x"} -Inf', '# HELP h_seconds Lat.', '# TYPE h_seconds histogram',
      'h_seconds_bucket{op="get",le="0.5"} 0', 'h_seconds_bucket{op="get",le="1"} 1', 'h_seconds_bucket{op="get",le="+Inf"} 1', 'h_seconds_sum{op="get"} 0.75', 'h_seconds_count{op="get"} 1', ''].join('\n'),
  );
  // Reset and set again in the other order: the order of the sets, values from zero.
  g.reset();
  g.set({ p: 'x' }, 3);
  g.inc({ p: 'y' });
  h.reset();
  h.observe({ op: 'put' }, 2);
  h.observe({ op: 'get' }, 0.25);
  assert.equal(
    m.render(),
    [...head, 'g{p="x"} 3', 'g{p="y"} 1', '# HELP h_seconds Lat.', '# TYPE h_seconds histogram',
      'h_seconds_bucket{op="put",le="0.5"} 0', 'h_seconds_bucket{op="put",le="1"} 0', 'h_seconds_bucket{op="put",le="+Inf"} 1', 'h_seconds_sum{op="put"} 2', 'h_seconds_count{op="put"} 1',
      'h_seconds_bucket{op="get",le="0.5"} 1', 'h_seconds_bucket{op="get",le="1"} 1', 'h_seconds_bucket{op="get",le="+Inf"} 1', 'h_seconds_sum{op="get"} 0.25', 'h_seconds_count{op="get"} 1', ''].join('\n'),
  );
  // Removed, then set again: one series, at the end.
  g.remove({ p: 'x' });
  assert.doesNotMatch(m.render(), /p="x"/);
  g.set({ p: 'x' }, 4);
  g.set({ p: 'x' }, 5);
  assert.equal(m.render().split('\n').filter((l) => l.startsWith('g{')).join('\n'), 'g{p="y"} 1\ng{p="x"} 5');
});

// A sampled family renders exactly what a gauge with the same label sets, set in the same order,
// renders (escaping included); nothing is held between renders, so each render lists what the
// sampler emits now; label sets are checked when their text is made.
test('sampled gauges render like gauges, from the caller\'s records at each render', () => {
  const names = ['peer', 'ip'] as const;
  const rows: Array<[string, string, number]> = [['a"\\\n', '1.2.3.4', 1], ['b', '', 0.25]];
  const texts = rows.map(([peer, ip]) => labelText(names, { peer, ip }));
  const sampled = new Metrics();
  sampled.sampledGauge('s', 'Sampled.', names, (emit) => rows.forEach(([, , v], i) => emit(texts[i]!, v)));
  const plain = new Metrics();
  const g = plain.gauge('s', 'Sampled.', names);
  for (const [peer, ip, v] of rows) g.set({ peer, ip }, v);
  assert.equal(sampled.render(), plain.render());
  assert.match(sampled.render(), /^s\{peer="a\\"\\\\\\n",ip="1\.2\.3\.4"\} 1$/m);
  rows.reverse();
  texts.reverse();
  rows.push(['c', 'x', -Infinity]);
  texts.push(labelText(names, { peer: 'c', ip: 'x' }));
  assert.deepEqual(sampled.render().split('\n').filter((l) => l.startsWith('s{')), ['s{peer="b",ip=""} 0.25', 's{peer="a\\"\\\\\\n",ip="1.2.3.4"} 1', 's{peer="c",ip="x"} -Inf']);
  rows.length = 0;
  assert.equal(sampled.render(), '# HELP s Sampled.\n# TYPE s gauge\n');
  assert.throws(() => labelText(names, { peer: 'x' } as unknown as { peer: string; ip: string }), (e: unknown) => e instanceof MetricError && e.code === 'ERR_METRIC');
  assert.throws(() => labelText(names, { peer: 'x', ip: 'y', q: 'z' } as unknown as { peer: string; ip: string }), (e: unknown) => e instanceof MetricError && e.code === 'ERR_METRIC');
});
