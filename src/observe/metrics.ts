// A small Prometheus registry rendering text exposition format 0.0.4.
//
// Why not prom-client: twilld needs a dozen series, and the exposition format is short to
// write. What matters for scrapers: HELP/TYPE before samples, one family per name, label
// values escaped (\\, \", \n), histogram buckets cumulative with a final le="+Inf" equal to
// _count. Unlabelled counters/gauges render a 0 sample from the start so that `rate()` and
// alerts have a series before the first event; labelled ones only once a label set is used
// (pre-initialise known label values with `inc(labels, 0)`).
//
// Families with a series per peer (10,000s) are sampled (Metrics.sampledGauge): their values
// stay in the caller's own records and are listed at render time against a label text the
// caller formatted once per peer (labelText). Held as series (an object per peer and family,
// each with its key, label text and a bound handle) four per-peer families took ~24 MB of heap
// at 10,000 judged peers; sampled, ~2.4 MB: one shared label text per peer
// (bench/metrics-render.ts prints the heap held).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { TwillError } from '../base/twill-error';


export type LabelValues<L extends string> = Readonly<Record<L, string>>;

export class MetricError extends TwillError<'ERR_METRIC'> {
  readonly metric: string;

  constructor(metric: string, message: string) {
    super('ERR_METRIC', message);
    this.name = 'MetricError';
    this.metric = metric;
  }
}

export interface Counter<L extends string = never> {
  inc(n?: number): void;
  inc(labels: LabelValues<L>, n?: number): void;
  /** Drops every label set (unlabelled: back to 0). */
  reset(): void;
}

export interface Gauge<L extends string = never> {
  set(v: number): void;
  set(labels: LabelValues<L>, v: number): void;
  inc(n?: number): void;
  inc(labels: LabelValues<L>, n?: number): void;
  dec(n?: number): void;
  dec(labels: LabelValues<L>, n?: number): void;
  /** Removes one label set, e.g. an info metric whose labels changed. */
  remove(labels: LabelValues<L>): void;
  reset(): void;
}

/** A label set formatted once for families with these label names: `{a="x",b="y"}` (see labelText). */
export type LabelText<L extends string> = string & { readonly __labelNames: L };

export interface Histogram<L extends string = never> {
  observe(v: number): void;
  observe(labels: LabelValues<L>, v: number): void;
  reset(): void;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type MetricType = 'counter' | 'gauge' | 'histogram';

interface Series {
  labels: readonly string[]; // values, in labelNames order
  // Formatted once, at creation, escaped; each only for the type whose lines use it ('' else).
  /** Histograms: `{a="x",b="y"}`, or '' without labels (the _sum and _count lines). */
  labelText: string;
  /** Counters and gauges: the sample line up to its value: name, label text, a space. */
  head: string;
  /** Histograms: the bucket lines' label text up to `le`: `{a="x",b="y",le="` or `{le="`. */
  bucketText: string;
  value: number; // counter/gauge
  buckets: number[]; // histogram: per-bucket (non-cumulative) counts, excluding +Inf
  sum: number;
  count: number;
}

interface Family {
  name: string;
  help: string;
  type: MetricType;
  labelNames: readonly string[];
  bucketBounds: readonly number[];
  /** bucketBounds as rendered in `le`, then "+Inf". */
  leValues: readonly string[];
  series: Map<string, Series>;
  /** Sampled families: their samples, listed at render time (`series` stays empty). */
  sample: ((emit: (labels: string, value: number) => void) => void) | undefined;
}

export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** `a="x",b="y"`: the label pairs without braces. */
function labelPairs(names: readonly string[], values: readonly string[]): string {
  return names.map((n, i) => `${n}="${escapeLabelValue(values[i] ?? '')}"`).join(',');
}

const RENDER_CHUNK_CHARS = 16 * 1024;

export class Metrics {
  private readonly families = new Map<string, Family>();
  private readonly collectors: Array<() => void> = [];

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    const f = this.register(name, help, 'counter', labelNames, []);
    const add = (labels: unknown, n: unknown): void => {
      const [lv, amount] = splitArgs(f, labels, n, 1);
      if (!(amount >= 0)) throw new MetricError(f.name, `counter ${f.name} can only increase (got ${amount})`);
      seriesFor(f, lv).value += amount;
    };
    return {
      inc: add as Counter<L>['inc'],
      reset: () => dropAll(f),
    };
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    const f = this.register(name, help, 'gauge', labelNames, []);
    return {
      set: ((labels: unknown, v: unknown) => {
        const [lv, value] = splitArgs(f, labels, v, undefined);
        seriesFor(f, lv).value = value;
      }) as Gauge<L>['set'],
      inc: ((labels: unknown, n: unknown) => {
        const [lv, amount] = splitArgs(f, labels, n, 1);
        seriesFor(f, lv).value += amount;
      }) as Gauge<L>['inc'],
      dec: ((labels: unknown, n: unknown) => {
        const [lv, amount] = splitArgs(f, labels, n, 1);
        seriesFor(f, lv).value -= amount;
      }) as Gauge<L>['dec'],
      remove: (labels: LabelValues<L>) => {
        f.series.delete(seriesKey(labelValues(f, labels)));
      },
      reset: () => dropAll(f),
    };
  }

  /**
   * A gauge family whose series the caller keeps: at every render `sample` emits each one's
   * label text (from labelText, made once per label set and kept) and value, in the order to
   * render. Nothing per series is held here. For families with a series per peer.
   */
  sampledGauge<L extends string>(name: string, help: string, labelNames: readonly L[], sample: (emit: (labels: LabelText<L>, value: number) => void) => void): void {
    if (labelNames.length === 0) throw new MetricError(name, `sampled gauge ${name} needs labels (an unlabelled gauge is one series)`);
    const f = this.register(name, help, 'gauge', labelNames, []);
    f.sample = sample as Family['sample'];
  }

  histogram<L extends string = never>(name: string, help: string, buckets: readonly number[], labelNames: readonly L[] = []): Histogram<L> {
    if (labelNames.includes('le' as L)) throw new MetricError(name, `histogram ${name} may not use the label name "le"`);
    const bounds = buckets.filter((b) => b !== Infinity);
    if (bounds.length === 0) throw new MetricError(name, `histogram ${name} needs at least one finite bucket`);
    for (let i = 0; i < bounds.length; i++) {
      const b = bounds[i]!;
      if (!Number.isFinite(b)) throw new MetricError(name, `histogram ${name}: bucket bound ${b} is not a finite number`);
      if (i > 0 && !(b > bounds[i - 1]!)) throw new MetricError(name, `histogram ${name}: buckets must be strictly increasing`);
    }
    const f = this.register(name, help, 'histogram', labelNames, bounds);
    return {
      observe: ((labels: unknown, v: unknown) => {
        const [lv, value] = splitArgs(f, labels, v, undefined);
        const s = seriesFor(f, lv);
        // Only the first matching bucket is counted here; render() accumulates.
        const idx = f.bucketBounds.findIndex((b) => value <= b);
        if (idx >= 0) s.buckets[idx]! += 1;
        s.sum += value;
        s.count += 1;
      }) as Histogram<L>['observe'],
      reset: () => dropAll(f),
    };
  }

  /** Runs before every render; for values that are sampled rather than counted (RSS, uptime). */
  addCollector(fn: () => void): void {
    this.collectors.push(fn);
  }

  /** The whole exposition text (tests, benchmarks; the daemon streams it with renderTo). */
  render(): string {
    const parts: string[] = [];
    this.renderTo((chunk) => parts.push(chunk));
    return parts.join('');
  }

  /**
   * The exposition text in pieces of ~16 K characters, each handed to `write` as soon as it
   * is full: a scrape at 10,000 peers (~3.5 MB) never exists whole, and its pieces die young.
   */
  renderTo(write: (chunk: string) => void): void {
    for (const c of this.collectors) c();
    let buf = '';
    const line = (l: string): void => {
      buf += l + '\n';
      if (buf.length >= RENDER_CHUNK_CHARS) {
        write(buf);
        buf = '';
      }
    };
    for (const f of this.families.values()) {
      line(`# HELP ${f.name} ${escapeHelp(f.help)}`);
      line(`# TYPE ${f.name} ${f.type}`);
      if (f.series.size === 0 && f.labelNames.length === 0 && f.type !== 'histogram') {
        line(`${f.name} 0`);
      }
      if (f.sample) {
        const name = f.name;
        f.sample((labels, v) => line(`${name}${labels} ${formatValue(v)}`));
        continue;
      }
      if (f.type !== 'histogram') {
        for (const s of f.series.values()) line(s.head + formatValue(s.value));
        continue;
      }
      const last = f.bucketBounds.length;
      for (const s of f.series.values()) {
        let cumulative = 0;
        for (let i = 0; i < last; i++) {
          cumulative += s.buckets[i]!;
          line(`${f.name}_bucket${s.bucketText}${f.leValues[i]}"} ${cumulative}`);
        }
        line(`${f.name}_bucket${s.bucketText}${f.leValues[last]}"} ${s.count}`);
        line(`${f.name}_sum${s.labelText} ${formatValue(s.sum)}`);
        line(`${f.name}_count${s.labelText} ${s.count}`);
      }
    }
    if (buf !== '') write(buf);
  }

  private register(name: string, help: string, type: MetricType, labelNames: readonly string[], bounds: readonly number[]): Family {
    if (!METRIC_NAME.test(name)) throw new MetricError(name, `invalid metric name "${name}"`);
    if (this.families.has(name)) throw new MetricError(name, `metric ${name} is already registered`);
    const seen = new Set<string>();
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new MetricError(name, `metric ${name}: invalid label name "${l}"`);
      if (seen.has(l)) throw new MetricError(name, `metric ${name}: duplicate label name "${l}"`);
      seen.add(l);
    }
    const leValues = [...bounds.map((b) => escapeLabelValue(formatValue(b))), '+Inf'];
    const f: Family = { name, help, type, labelNames: [...labelNames], bucketBounds: [...bounds], leValues, series: new Map(), sample: undefined };
    this.families.set(name, f);
    return f;
  }
}

/** The series of a label set, made if absent. */
function seriesFor(f: Family, values: readonly string[]): Series {
  const key = seriesKey(values);
  let s = f.series.get(key);
  if (s) return s;
  const pairs = labelPairs(f.labelNames, values);
  const histogram = f.type === 'histogram'; // only the texts its lines use are made
  s = {
    labels: values,
    labelText: !histogram || pairs === '' ? '' : `{${pairs}}`,
    head: histogram ? '' : pairs === '' ? `${f.name} ` : `${f.name}{${pairs}} `,
    bucketText: !histogram ? '' : pairs === '' ? '{le="' : `{${pairs},le="`,
    value: 0,
    buckets: f.bucketBounds.map(() => 0),
    sum: 0,
    count: 0,
  };
  f.series.set(key, s);
  return s;
}

function dropAll(f: Family): void {
  if (f.series.size > 0) f.series = new Map();
}

/**
 * The label text of one label set, `{a="x",b="y"}` (escaped), for sampled families with these
 * label names: checked here, once, so a render does no label work for it.
 */
export function labelText<L extends string>(labelNames: readonly L[], labels: LabelValues<L>): LabelText<L> {
  const values = labelValues({ name: `{${labelNames.join(',')}}`, labelNames }, labels);
  // One flat string (join builds one): a template would keep a tree of pieces per label set.
  return ['{', labelPairs(labelNames, values), '}'].join('') as LabelText<L>;
}

function seriesKey(values: readonly string[]): string {
  return JSON.stringify(values);
}

// Accepts both call shapes, (value) and (labels, value), and checks the label set exactly:
// a missing or extra label is a programming error that would otherwise split a series.
function splitArgs(f: Family, a: unknown, b: unknown, dflt: number | undefined): [string[], number] {
  let labels: unknown;
  let value: unknown;
  if (typeof a === 'number' || a === undefined) {
    labels = undefined;
    value = a;
  } else {
    labels = a;
    value = b;
  }
  const v = value === undefined ? dflt : value;
  if (typeof v !== 'number') throw new MetricError(f.name, `metric ${f.name}: a numeric value is required`);
  return [labelValues(f, labels), v];
}

/** The values of `labels` in `f`'s label order; a missing, extra or non-string label is an error. */
function labelValues(f: Pick<Family, 'name' | 'labelNames'>, labels: unknown): string[] {
  const given = (labels ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(given)) {
    if (!f.labelNames.includes(k)) throw new MetricError(f.name, `metric ${f.name}: unknown label "${k}"`);
  }
  return f.labelNames.map((n) => {
    const v = given[n];
    if (typeof v !== 'string') throw new MetricError(f.name, `metric ${f.name}: label "${n}" must be a string`);
    return v;
  });
}

// ---------------------------------------------------------------------------------------------
// twilld's metrics. Names and label sets are an interface (dashboards, alerts): change with care.

export const ENTRY_KINDS = ['route', 'neigh', 'fdb', 'device', 'address'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** etcd event observed → kernel converged; VXLAN programming is ms, etcd round trips add more. */
export const PROGRAMMING_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export interface LeaseInfo {
  subnet: string;
  publicIp: string;
  vtepMac: string;
}

export interface DaemonMetrics {
  peers: Gauge;
  /** Programmed peers by path: "vxlan" (encapsulated) or "direct" (route via the PublicIP). */
  peerPaths: Gauge<'path'>;
  /** Peers host-gw (or DirectRouting's direct path) cannot reach on the underlay's link: not programmed. */
  peersUnreachable: Gauge;
  programmedEntries: Gauge<'kind'>;
  programmingLatency: Histogram;
  resyncs: Counter<'reason'>;
  driftRepaired: Counter<'kind'>;
  leasesSkipped: Counter<'reason'>;
  leaseRenewals: Counter<'result'>;
  etcdErrors: Counter<'op'>;
  dataplaneErrors: Counter<'kind'>;
  ready: Gauge;
  leaseInfo: Gauge<'subnet' | 'public_ip' | 'vtep_mac'>;
  /** Replaces twill_lease_info's single series (null: no lease held). */
  setLease(info: LeaseInfo | null): void;
  /** Stops the event-loop delay sampler. */
  stop(): void;
}

export function createDaemonMetrics(m: Metrics): DaemonMetrics {
  const peers = m.gauge('twill_peers', 'Remote hosts (leases) currently programmed into the dataplane.');
  const peerPaths = m.gauge('twill_peer_paths', 'Programmed peers by path (vxlan: encapsulated; direct: a route via the peer underlay IP).', ['path']);
  const peersUnreachable = m.gauge('twill_peers_unreachable', 'Peers not programmed because their underlay IP is not on the underlay link (host-gw).');
  const programmedEntries = m.gauge('twill_programmed_entries', 'Kernel objects twill currently owns, by kind.', ['kind']);
  const programmingLatency = m.histogram(
    'twill_programming_latency_seconds',
    'Time from an etcd lease event to the kernel having converged on it.',
    PROGRAMMING_LATENCY_BUCKETS,
  );
  const resyncs = m.counter('twill_resyncs_total', 'Full reconciliations of desired against actual state, by trigger.', ['reason']);
  const driftRepaired = m.counter('twill_drift_repaired_total', 'Kernel objects found different from desired state and repaired.', ['kind']);
  const leasesSkipped = m.counter('twill_leases_skipped_total', 'Remote leases ignored (invalid, foreign backend, ...), by reason.', ['reason']);
  const leaseRenewals = m.counter('twill_lease_renewals_total', 'Own subnet lease renewal attempts, by result.', ['result']);
  const etcdErrors = m.counter('twill_etcd_errors_total', 'Failed etcd operations, by operation.', ['op']);
  const dataplaneErrors = m.counter('twill_dataplane_errors_total', 'Failed kernel programming operations, by object kind.', ['kind']);
  const ready = m.gauge('twill_ready', '1 when twilld holds a lease and the dataplane has converged, else 0.');
  const leaseInfo = m.gauge('twill_lease_info', "This host's subnet lease (value is always 1).", ['subnet', 'public_ip', 'vtep_mac']);

  for (const kind of ENTRY_KINDS) {
    programmedEntries.set({ kind }, 0);
    driftRepaired.inc({ kind }, 0);
    dataplaneErrors.inc({ kind }, 0);
  }
  for (const result of ['ok', 'error']) leaseRenewals.inc({ result }, 0);

  const stopProcess = registerProcessMetrics(m);

  return {
    peers,
    peerPaths,
    peersUnreachable,
    programmedEntries,
    programmingLatency,
    resyncs,
    driftRepaired,
    leasesSkipped,
    leaseRenewals,
    etcdErrors,
    dataplaneErrors,
    ready,
    leaseInfo,
    setLease(info) {
      leaseInfo.reset();
      if (info) leaseInfo.set({ subnet: info.subnet, public_ip: info.publicIp, vtep_mac: info.vtepMac }, 1);
    },
    stop: stopProcess,
  };
}

// Cheap process metrics sampled at scrape time. Event-loop delay is the p99/max over the
// interval since the previous scrape (the sampler is reset on each render), which is what an
// alert on a stalled loop wants; the sampler's timer does not keep the process alive.
function registerProcessMetrics(m: Metrics): () => void {
  const rss = m.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');
  const start = m.gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.');
  const cpu = m.counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.');
  const heap = m.gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes.');
  const heapTotal = m.gauge('nodejs_heap_size_total_bytes', 'V8 heap committed (in use and free), in bytes.');
  const external = m.gauge('nodejs_external_memory_bytes', 'Memory outside the V8 heap held by its objects (Buffers and the like), in bytes.');
  const lagP99 = m.gauge('nodejs_eventloop_lag_p99_seconds', 'Event loop delay, 99th percentile since the previous scrape.');
  const lagMax = m.gauge('nodejs_eventloop_lag_max_seconds', 'Event loop delay, maximum since the previous scrape.');

  start.set(Math.round(Date.now() / 1000 - process.uptime()));
  const eld = monitorEventLoopDelay({ resolution: 20 });
  eld.enable();
  let cpuSeen = 0;

  m.addCollector(() => {
    const mem = process.memoryUsage();
    rss.set(mem.rss);
    heap.set(mem.heapUsed);
    heapTotal.set(mem.heapTotal);
    external.set(mem.external);
    const usage = process.cpuUsage();
    const cpuNow = (usage.user + usage.system) / 1e6;
    if (cpuNow > cpuSeen) cpu.inc(cpuNow - cpuSeen);
    cpuSeen = Math.max(cpuSeen, cpuNow);
    // Histogram values are in nanoseconds; with no samples yet percentile() is 0 and max is 0.
    lagP99.set(eld.count > 0 ? eld.percentile(99) / 1e9 : 0);
    lagMax.set(eld.count > 0 ? eld.max / 1e9 : 0);
    eld.reset();
  });
  return () => eld.disable();
}
