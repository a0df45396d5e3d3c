// A netlink socket of its own joined to multicast groups (kernel change notifications), never
// mixed with request/dump traffic. Non-blocking, drained from the event loop through a uv_poll
// watcher in native/, at most 1024 reads per wakeup so a flood of events cannot starve timers
// and I/O. If the receive queue overflows the kernel drops events and recv reports ENOBUFS:
// that is reported as an overflow, so the consumer resyncs instead of trusting a partial
// picture. Users: rtnetlink events (events.ts), nf_tables events (src/firewall/events.ts).
import * as fs from 'node:fs';
import { native, EAGAIN } from '../netns/native';
import { decodeMessages, type RawMessage } from './frame';
import { ENOBUFS } from './errors';

export interface GroupSocketHandlers {
  message(m: RawMessage): void;
  overflow(): void;
  error(err: Error): void;
}

export class NetlinkGroupSocket {
  private readonly fd: number;
  private readonly watch: unknown;
  private readonly buf = Buffer.allocUnsafe(256 * 1024);
  private closed = false;

  /** `netns`: path of the namespace to open it in (default: ours). Throws the native errno error. */
  constructor(protocol: number, groups: number[], netns: string | undefined, bufBytes: number, private readonly on: GroupSocketHandlers) {
    this.fd = native().netlinkOpen(protocol, groups, netns ?? null, bufBytes, 0, true);
    this.watch = native().watchReadable(this.fd, () => this.drain());
  }

  /** Do not keep the process alive just for kernel events. */
  unref(): void {
    native().unrefWatch(this.watch);
  }

  private drain(): void {
    for (let i = 0; i < 1024 && !this.closed; i++) {
      let n: number;
      try {
        n = native().netlinkRecv(this.fd, this.buf);
      } catch (err) {
        if ((err as { errno?: number }).errno === ENOBUFS) {
          this.on.overflow();
          continue;
        }
        this.on.error(err as Error);
        return;
      }
      if (n === -EAGAIN) return;
      for (const m of decodeMessages(this.buf.subarray(0, n))) this.on.message(m);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native().stopWatch(this.watch);
    fs.closeSync(this.fd);
  }
}
