// The prober: every peer, once per round (schedule.ts), gets a small probe and a full-size one
// (pod MTU, DF set) sent together from our overlay address to the peer's, over the path pod
// traffic takes: the route to the peer's subnet and whatever the backend programmed under it
// (VXLAN: neighbour, FDB, the underlay; host-gw: the route via the peer's PublicIP). The
// answers, or their absence after the timeout, are one round for health.ts.
//
// - Replies are matched by sequence number and this run's random token, and must come from
//   the peer's overlay address or its PublicIP (how a reply leaves depends on the peer's
//   backend) at the size sent. Anything else is counted and ignored.
// - A full-size probe the kernel refuses to send (EMSGSIZE: a local MTU below the pod MTU)
//   counts as lost: the path does not carry full-size packets, which is the finding.
// - The socket is bound to our overlay address; it is (re)opened when that address changes
//   and after any socket error, on the next tick.
import type * as dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { formatIp4, parseIp4 } from '../ip/ipv4';
import { applyRound, newPeerHealth, type PeerHealth, type Transition } from './health';
import { newProbePeer, retarget, type ProbePeer, type ProbeTarget } from './peer';
import { ProbeSchedule } from './schedule';
import { openDfSocket } from './socket';
import { decodeProbe, encodeRequest, fullProbeSize, KIND_REPLY, PROBE_HEADER_BYTES } from './wire';

/** Small probe: header plus a little padding, well under any MTU. */
export const SMALL_PROBE_BYTES = PROBE_HEADER_BYTES + 44;
const MAX_TIMEOUT_MS = 1000;
const JITTER = 0.2;

export interface ProberOptions {
  port: number;
  intervalMs: number;
  maxProbesPerSecond: number;
  /** Rounds without an answer before a peer (or its full-size path) counts as failed. */
  failures: number;
  /** A peer's status changed; `h` is its health, live (later rounds update it in place). */
  onTransition(target: ProbeTarget, t: Transition, h: PeerHealth): void;
  onError(err: Error): void;
  /** Round trip of an answered small probe, ms. */
  onRtt(ms: number): void;
  /** How the DF socket is made (default openDfSocket; tests and the bench open it in a namespace). */
  openSocket?: (ip: number, port: number) => Promise<dgram.Socket>;
}

export interface ProberStats {
  sentSmall: number;
  sentFull: number;
  replies: number;
  /** Replies that matched nothing of ours (late, forged, wrong source or size). */
  unmatched: number;
  sendErrors: number;
}

interface Pending {
  key: string;
  full: boolean;
  size: number;
  sentAt: number;
}

interface Round {
  small: number | null;
  full: number | null;
  deadline: number;
  seqs: [number, number];
}

export class Prober {
  private sock: dgram.Socket | undefined;
  private opening = false;
  private self = 0;
  private mtu = 0;
  private readonly schedule: ProbeSchedule<ProbePeer>;
  /** Every probed peer, by subnet text: the one per-peer map of probing (peer.ts). */
  private readonly peerMap = new Map<string, ProbePeer>();
  // Rounds in flight and their probes by sequence number: a timeout's worth of peers, not all.
  private readonly pending = new Map<number, Pending>();
  private readonly rounds = new Map<string, Round>();
  private seq = randomInt(2 ** 31);
  private readonly token = randomInt(2 ** 32 - 1) >>> 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly timeoutMs: number;
  readonly stats: ProberStats = { sentSmall: 0, sentFull: 0, replies: 0, unmatched: 0, sendErrors: 0 };

  constructor(private readonly opts: ProberOptions) {
    this.schedule = new ProbeSchedule({ intervalMs: opts.intervalMs, maxProbesPerSecond: opts.maxProbesPerSecond, probesPerPeer: 2, jitter: JITTER }, performance.now());
    this.timeoutMs = Math.min(MAX_TIMEOUT_MS, Math.floor(opts.intervalMs * 0.8));
  }

  /** Our overlay address and the pod MTU; probing starts once both are known. */
  setSelf(overlay: number, mtu: number): void {
    this.mtu = mtu;
    if (overlay === this.self) return;
    this.self = overlay;
    this.closeSocket();
    this.wake(0);
  }

  /**
   * The whole set of targets (rebuilt by the caller after a burst of lease events). Peers that
   * stay keep their records (a changed address is written into the record): at 10,000 peers a refill
   * would leave 10,000 promoted objects behind per call (issue 13), where the caller's fresh
   * targets die young.
   */
  setTargets(targets: Iterable<ProbeTarget>): void {
    const now = performance.now();
    const want = new Set<string>();
    for (const t of targets) {
      want.add(t.key);
      const cur = this.peerMap.get(t.key);
      if (cur) retarget(cur, t);
      else this.peerMap.set(t.key, newProbePeer(t, newPeerHealth(Date.now())));
    }
    for (const [k, p] of this.peerMap) if (!want.has(k)) this.forget(p);
    this.schedule.setPeers(this.peerMap.values(), now);
    this.wake(0);
  }

  /** One target added or changed (a lease event); a changed one keeps its health. */
  upsertTarget(t: ProbeTarget): void {
    const cur = this.peerMap.get(t.key);
    if (cur) {
      if (!retarget(cur, t)) return;
    } else {
      const p = newProbePeer(t, newPeerHealth(Date.now()));
      this.peerMap.set(t.key, p);
      this.schedule.add(p, performance.now());
    }
    this.wake(0);
  }

  /** One target gone (a lease event), with its health. */
  removeTarget(key: string): void {
    const p = this.peerMap.get(key);
    if (p) this.forget(p);
  }

  /** Every probed peer, in the order first added. Callers read the records; only the metrics write one field (`label`). */
  peers(): ReadonlyMap<string, ProbePeer> {
    return this.peerMap;
  }

  peer(key: string): ProbePeer | undefined {
    return this.peerMap.get(key);
  }

  roundMs(): number {
    return this.schedule.roundMs();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.closeSocket();
  }

  /** A peer gone: its record leaves the map and the schedule, its round in flight is dropped. */
  private forget(p: ProbePeer): void {
    this.peerMap.delete(p.key);
    this.schedule.remove(p);
    const r = this.rounds.get(p.key);
    if (r) for (const s of r.seqs) this.pending.delete(s);
    this.rounds.delete(p.key);
  }

  private wake(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref();
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    if (!this.sock) {
      if (this.self !== 0 && !this.opening) this.open();
      return; // open() wakes us when the socket is ready
    }
    const now = performance.now();
    let earliest = Infinity;
    for (const [key, r] of this.rounds) {
      if (r.deadline <= now) this.finish(key, r);
      else earliest = Math.min(earliest, r.deadline);
    }
    for (const p of this.schedule.take(now)) {
      const open = this.rounds.get(p.key);
      if (open) this.finish(p.key, open);
      this.send(p, now);
      earliest = Math.min(earliest, now + this.timeoutMs);
    }
    const next = Math.min(this.schedule.nextDueIn(now), earliest - now);
    this.wake(Math.max(5, Math.min(1000, Number.isFinite(next) ? next : 1000)));
  }

  private open(): void {
    this.opening = true;
    const addr = this.self;
    // An opener that throws synchronously (no native udpOpen, a bad fd) is a rejection too:
    // probing failing must never take the daemon down.
    const opener = this.opts.openSocket ?? openDfSocket;
    (async () => opener(addr, 0))().then(
      (s) => {
        this.opening = false;
        if (this.stopped || addr !== this.self) {
          s.close();
        } else {
          s.on('message', (msg, rinfo) => this.onReply(msg, rinfo.address));
          s.on('error', (err) => {
            this.opts.onError(err);
            this.closeSocket();
            this.wake(1000);
          });
          this.sock = s;
        }
        this.wake(0);
      },
      (err: Error) => {
        this.opening = false;
        this.opts.onError(err); // e.g. our address is not on the device yet
        this.wake(1000);
      },
    );
  }

  private closeSocket(): void {
    try {
      this.sock?.close();
    } catch {
      // already closed
    }
    this.sock = undefined;
  }

  private send(t: ProbePeer, now: number): void {
    const key = t.key;
    const seqs: [number, number] = [this.nextSeq(), this.nextSeq()];
    this.rounds.set(key, { small: null, full: null, deadline: now + this.timeoutMs, seqs });
    const sizes = [SMALL_PROBE_BYTES, fullProbeSize(this.mtu)];
    for (let i = 0; i < 2; i++) {
      const full = i === 1;
      const size = sizes[i]!;
      const buf = encodeRequest({ full, seq: seqs[i]!, sender: this.self, token: this.token, size });
      this.pending.set(seqs[i]!, { key, full, size, sentAt: now });
      if (full) this.stats.sentFull++;
      else this.stats.sentSmall++;
      this.sock!.send(buf, this.opts.port, formatIp4(t.overlay), (err) => {
        if (err) this.stats.sendErrors++; // EMSGSIZE for a full probe: lost, which is the finding
      });
    }
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private onReply(msg: Buffer, from: string): void {
    const now = performance.now();
    const d = decodeProbe(msg);
    const p = d.ok ? this.pending.get(d.probe.seq) : undefined;
    const t = p ? this.peerMap.get(p.key) : undefined;
    let src = -1;
    try {
      src = parseIp4(from);
    } catch {
      // not IPv4: cannot be ours
    }
    if (!d.ok || !p || !t || d.probe.kind !== KIND_REPLY || d.probe.token !== this.token || d.probe.size !== p.size || d.probe.full !== p.full || (src !== t.overlay && src !== t.publicIp)) {
      this.stats.unmatched++;
      return;
    }
    this.pending.delete(d.probe.seq);
    this.stats.replies++;
    const r = this.rounds.get(p.key);
    if (!r) return;
    const rtt = now - p.sentAt;
    if (p.full) r.full = rtt;
    else {
      r.small = rtt;
      this.opts.onRtt(rtt);
    }
    if (r.small !== null && r.full !== null) this.finish(p.key, r);
  }

  private finish(key: string, r: Round): void {
    this.rounds.delete(key);
    for (const s of r.seqs) this.pending.delete(s);
    const p = this.peerMap.get(key);
    if (!p) return;
    const transition = applyRound(p.health, { smallRttMs: r.small, fullRttMs: r.full, at: Date.now() }, this.opts.failures);
    if (transition) this.opts.onTransition(p, transition, p.health);
  }
}
