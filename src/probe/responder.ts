// The probe responder: one UDP socket on the probe port, answering peers' probes (respond.ts
// decides). Its socket sets DF too, so a full-size answer proves the way back at full size.
import type * as dgram from 'node:dgram';
import { parseIp4 } from '../ip/ipv4';
import { respond, RESPONDER_DROPS, type ResponderDrop, type ResponderPolicy } from './respond';
import { openDfSocket } from './socket';
import { TokenBucket } from './token-bucket';

export interface ResponderStats {
  answered: number;
  dropped: Record<ResponderDrop, number>;
}

export class ProbeResponder {
  private sock: dgram.Socket | undefined;
  private readonly bucket: TokenBucket;
  readonly stats: ResponderStats = { answered: 0, dropped: Object.fromEntries(RESPONDER_DROPS.map((r) => [r, 0])) as Record<ResponderDrop, number> };

  constructor(
    private readonly port: number,
    private readonly policy: ResponderPolicy,
    ratePerSecond: number,
    private readonly onError: (err: Error) => void,
    private readonly openSocket: (ip: number, port: number) => Promise<dgram.Socket> = openDfSocket,
  ) {
    this.bucket = new TokenBucket(ratePerSecond, Math.max(1, ratePerSecond / 4), performance.now());
  }

  async start(bindIp = 0): Promise<void> {
    const s = await this.openSocket(bindIp, this.port);
    s.on('message', (msg, rinfo) => {
      let ip: number;
      try {
        ip = parseIp4(rinfo.address);
      } catch {
        this.stats.dropped.source++;
        return;
      }
      const r = respond(msg, { ip, port: rinfo.port }, this.policy, this.bucket, performance.now());
      if ('drop' in r) {
        this.stats.dropped[r.drop]++;
        return;
      }
      this.stats.answered++;
      s.send(r.answer, rinfo.port, rinfo.address, (err) => {
        if (err) this.onError(err);
      });
    });
    s.on('error', (err) => this.onError(err));
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
