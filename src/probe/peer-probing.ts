// twilld's peer probing, wired: the responder, the prober, their metrics, state changes logged
// once, and the host's health summary handed to a sink (etcd, see src/subnet/health-store.ts).
// The daemon calls start / setSelf / setPeers / stop and nothing else; peer health never
// feeds readiness (a host is ready when its own dataplane is, whatever its peers do).
import type { Logger } from '../observe/log';
import type { Metrics } from '../observe/metrics';
import { formatIp4, formatPrefix4, ipInPrefix, type Prefix4 } from '../ip/ipv4';
import type { PeerHealth, Transition } from './health';
import { registerProbeMetrics } from './metrics';
import type { ProbeTarget } from './peer';
import { Prober } from './prober';
import { ProbeResponder } from './responder';
import { buildSummary, type HealthSummary } from './summary';
import { overlayAddress, probeTargets, type PeerAddresses } from './targets';

/** Rounds without an answer before a peer, or its full-size path, counts as failed. */
export const PROBE_FAILURES = 3;
/** How often the summary is offered to the sink even without a change (it writes heartbeats). */
const OFFER_MS = 10_000;
/**
 * Where the summary goes. `offer` says a new one may be due and how to make it: the sink calls
 * `build` when it is about to write (at most once per write, 1-5 s apart), so a burst of
 * transitions (a host going down, a round judging thousands of peers) costs one O(peers) build
 * per write, not one per transition.
 */
export interface SummarySink {
  offer(build: () => HealthSummary): void;
  close(): Promise<void>;
}

export interface PeerProbingOptions {
  port: number;
  intervalS: number;
  rate: number;
  nodeName: string;
  network: Prefix4;
  log: Logger;
  metrics: Metrics;
  sink?: SummarySink;
}

export class PeerProbing {
  private readonly prober: Prober;
  private readonly responder: ProbeResponder;
  /**
   * Probed peers' PublicIPs (signed 32-bit: V8 keeps those unboxed, an address above 2^31 is
   * otherwise a heap number each) and how many peers name each.
   */
  private readonly publicIps = new Map<number, number>();
  private self: { name: string; publicIp: string; subnet: string; mtu: number } | undefined;
  private selfOverlay = 0;
  /**
   * The last summary offered, until something in it can change (a transition, the peer set,
   * ourselves): the 10-s offers in between reuse its content. With 10,000 peers down it lists
   * 10,000 entries, and rebuilding it every 10 s left ~0.9 MB of promoted garbage each time.
   */
  private summary: HealthSummary | undefined;
  private offerTimer: NodeJS.Timeout | undefined;
  private responderRetry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: PeerProbingOptions) {
    let observeRtt = (_ms: number): void => undefined;
    this.prober = new Prober({
      port: opts.port,
      intervalMs: opts.intervalS * 1000,
      maxProbesPerSecond: opts.rate,
      failures: PROBE_FAILURES,
      onTransition: (t, tr, h) => this.onTransition(t, tr, h),
      onError: (err) => this.logError('prober', err),
      onRtt: (ms) => observeRtt(ms),
    });
    this.responder = new ProbeResponder({
      port: opts.port,
      policy: { allowed: (ip) => ipInPrefix(ip, opts.network) || this.publicIps.has(ip | 0), self: () => this.selfOverlay },
      // Every host's prober is bounded by `rate`; answering 4× that leaves room for skew.
      ratePerSecond: Math.max(20, 4 * opts.rate),
      onError: (err) => this.logError('responder', err),
    });
    observeRtt = registerProbeMetrics(opts.metrics, {
      peers: () => this.prober.peers().values(),
      proberStats: () => this.prober.stats,
      responderStats: () => this.responder.stats,
    }).observeRtt;
  }

  start(): void {
    this.startResponder();
    this.offerTimer = setInterval(() => this.offer(), OFFER_MS);
    this.offerTimer.unref();
  }

  private startResponder(): void {
    this.responder.start().then(
      () => this.opts.log.info({ port: this.opts.port }, 'probe responder listening'),
      (err: Error) => {
        this.logError('responder', err);
        if (this.stopped) return;
        this.responderRetry = setTimeout(() => this.startResponder(), 5000);
        this.responderRetry.unref();
      },
    );
  }

  /** Our lease is held and our overlay address is on the device: probing can start. */
  setSelf(self: { subnet: Prefix4; publicIp: number }, mtu: number): void {
    const next = { name: this.opts.nodeName, publicIp: formatIp4(self.publicIp), subnet: formatPrefix4(self.subnet), mtu };
    const changed = JSON.stringify(next) !== JSON.stringify(this.self);
    this.self = next;
    this.selfOverlay = overlayAddress(self.subnet);
    this.prober.setSelf(this.selfOverlay, mtu);
    if (changed) {
      this.summary = undefined;
      this.offer();
    }
  }

  /** Every probed peer at once (the daemon's full recompute). */
  setPeers(peers: Iterable<PeerAddresses>): void {
    const targets = probeTargets(peers);
    this.publicIps.clear();
    for (const t of targets) this.countIp(t.publicIp, 1);
    this.prober.setTargets(targets);
    this.summary = undefined;
  }

  /**
   * One lease event's peers: programmed now (or with a new lease), and no longer (or with
   * the lease replaced). Applied in place (issue 13): rebuilding 10,000 targets after every
   * burst of events left megabytes of promoted garbage behind each time.
   */
  peersChanged(added: Iterable<PeerAddresses>, removed: Iterable<PeerAddresses>): void {
    const add = probeTargets(added);
    const keep = new Set(add.map((t) => t.key));
    for (const t of probeTargets(removed)) {
      this.countIp(t.publicIp, -1);
      if (!keep.has(t.key)) this.prober.removeTarget(t.key);
    }
    for (const t of add) {
      this.countIp(t.publicIp, 1);
      this.prober.upsertTarget(t);
    }
    this.summary = undefined;
  }

  private countIp(publicIp: number, by: number): void {
    const ip = publicIp | 0;
    const n = (this.publicIps.get(ip) ?? 0) + by;
    if (n > 0) this.publicIps.set(ip, n);
    else this.publicIps.delete(ip);
  }

  private onTransition(t: ProbeTarget, tr: Transition, h: PeerHealth): void {
    const o = { peer: t.key, peerIp: formatIp4(t.publicIp), from: tr.from, to: tr.to, rttMs: h.rttMs };
    if (tr.to === 'ok' || tr.to === 'unknown') this.opts.log.info(o, 'peer health changed');
    else this.opts.log.warn(o, 'peer health changed');
    this.summary = undefined;
    this.offer();
  }

  private offer(): void {
    const self = this.self;
    if (!self || !this.opts.sink) return;
    this.opts.sink.offer(() => {
      const now = Date.now();
      this.summary = this.summary ? { ...this.summary, at: Math.floor(now / 1000) } : buildSummary(this.self ?? self, this.prober.peers().values(), this.prober.roundMs(), now);
      return this.summary;
    });
  }

  private readonly errorsLogged = new Set<string>();

  /** Each distinct error once (a missing address retried every second would flood the log). */
  private logError(part: string, err: Error): void {
    const key = `${part}:${(err as { code?: string }).code ?? ''}:${err.message}`;
    if (this.errorsLogged.has(key)) return;
    this.errorsLogged.add(key);
    this.opts.log.warn({ part, err: err.message, cause: (err.cause as Error | undefined)?.message }, 'peer probing problem; retrying');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.offerTimer) clearInterval(this.offerTimer);
    if (this.responderRetry) clearTimeout(this.responderRetry);
    this.prober.stop();
    this.responder.close();
    await this.opts.sink?.close();
  }
}
