// The probe responder: one UDP socket on the probe port, answering peers' probes (respond.ts
// decides). Its socket sets DF too, so a full-size answer proves the way back at full size.
import type * as dgram from 'node:dgram';
import { parseIp4 } from '../ip/ipv4';
import { respond, RESPONDER_DROPS, type ResponderDrop, type ResponderLimits, type ResponderPolicy } from './respond';
import { openDfSocket } from './socket';
import { PerSourceLimiter, TokenBucket } from './token-bucket';

const PER_SOURCE_RATE = 10;

export interface ResponderStats {
  answered: number;
  dropped: Record<ResponderDrop, number>;
}

export interface ResponderOptions {
  port: number;
  policy: ResponderPolicy;
  /** Answers per second, all sources together. */
  ratePerSecond: number;
  /** Answers per second to one source (default 10). */
  perSourceRate?: number;
  onError(err: Error): void;
  /** How the DF socket is made (default openDfSocket; tests and the bench open it in a namespace). */
  openSocket?: (ip: number, port: number) => Promise<dgram.Socket>;
}

export class ProbeResponder {
  private sock: dgram.Socket | undefined;
  private readonly limits: ResponderLimits;
  readonly stats: ResponderStats = { answered: 0, dropped: Object.fromEntries(RESPONDER_DROPS.map((r) => [r, 0])) as Record<ResponderDrop, number> };

  constructor(private readonly opts: ResponderOptions) {
    // A peer sends 2 probes a round (rounds ≥ 1 s apart); a trace adds a few: 10/s per source is ample.
    const perSource = opts.perSourceRate ?? PER_SOURCE_RATE;
    this.limits = {
      total: new TokenBucket(opts.ratePerSecond, Math.max(1, opts.ratePerSecond / 4), performance.now()),
      perSource: new PerSourceLimiter(perSource, 2 * perSource),
    };
  }

  async start(bindIp = 0): Promise<void> {
    const s = await (this.opts.openSocket ?? openDfSocket)(bindIp, this.opts.port);
    s.on('message', (msg, rinfo) => {
      let ip: number;
      try {
        ip = parseIp4(rinfo.address);
      } catch {
        this.stats.dropped.source++;
        return;
      }
      const r = respond(msg, { ip, port: rinfo.port }, this.opts.policy, this.limits, performance.now());
      if ('drop' in r) {
        this.stats.dropped[r.drop]++;
        return;
      }
      this.stats.answered++;
      s.send(r.answer, rinfo.port, rinfo.address, (err) => {
        if (err) this.opts.onError(err);
      });
    });
    s.on('error', (err) => this.opts.onError(err));
    this.sock = s;
  }

  get boundPort(): number {
    return this.sock?.address().port ?? 0;
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}
