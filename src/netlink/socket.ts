// A synchronous rtnetlink request socket. rtnetlink handles a request inside sendmsg() on the
// caller's thread, so by the time send returns the answers are queued: reading them with a
// blocking recv (bounded by SO_RCVTIMEO) is both simpler and faster than promise plumbing,
// and keeps setns-created sockets usable without threads. Requests are batched: many
// messages per sendmsg, NLM_F_ACK only on each chunk's last message; the kernel still
// reports every failing message by its sequence number.
import { native, EAGAIN } from '../netns/native';
import { decodeError, decodeMessages, encodeMessage, Flags, HEADER_LENGTH, MsgType, type RawMessage } from './frame';
import { ETIMEDOUT, NetlinkError } from './errors';

const NETLINK_ROUTE = 0;
const BATCH_BYTES = 64 * 1024;
const RECV_BYTES = 64 * 1024;
const SOCKET_BUF = 8 * 1024 * 1024;
const RECV_TIMEOUT_MS = 10_000;
const DUMP_RETRIES = 10;

export interface Request {
  type: number;
  flags: number;
  body: Buffer;
  /** For error messages: what this request is about ("route 10.244.3.0/24"). */
  target: string;
}

export interface OpenOptions {
  /** Path of a network namespace (/run/netns/X or /proc/PID/ns/net); default: our own. */
  netns?: string;
}

export class NetlinkSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly recvBuf = Buffer.allocUnsafe(RECV_BYTES);
  private sendBuf = Buffer.alloc(BATCH_BYTES + 4096);
  private closed = false;

  private constructor(private readonly fd: number, readonly netns: string | undefined) {}

  static open(opts: OpenOptions = {}): NetlinkSocket {
    let fd: number;
    try {
      fd = native().netlinkOpen(NETLINK_ROUTE, [], opts.netns ?? null, SOCKET_BUF, RECV_TIMEOUT_MS, false);
    } catch (err) {
      const e = err as { errno?: number };
      throw new NetlinkError(e.errno ?? 0, 'open', opts.netns ?? 'netlink socket', undefined, err);
    }
    return new NetlinkSocket(fd, opts.netns);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    require('node:fs').closeSync(this.fd);
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  private send(buf: Buffer, op: string): void {
    try {
      native().netlinkSend(this.fd, buf);
    } catch (err) {
      const e = err as { errno?: number };
      throw new NetlinkError(e.errno ?? 0, op, 'sendmsg', undefined, err);
    }
  }

  /** The messages of one datagram; `copy: false` leaves them in the receive buffer, which the next recv reuses. */
  private recv(op: string, target: string, copy = true): RawMessage[] {
    let n: number;
    try {
      n = native().netlinkRecv(this.fd, this.recvBuf);
    } catch (err) {
      const e = err as { errno?: number };
      throw new NetlinkError(e.errno ?? 0, op, target, undefined, err);
    }
    if (n === -EAGAIN) throw new NetlinkError(ETIMEDOUT, op, target, 'no answer from the kernel');
    const got = this.recvBuf.subarray(0, n);
    return decodeMessages(copy ? Buffer.from(got) : got);
  }

  /**
   * Sends every request and returns, per request, null on success or its NetlinkError.
   * One failure never stops the rest of the batch.
   */
  transact(requests: readonly Request[], op = 'request'): Array<NetlinkError | null> {
    const results: Array<NetlinkError | null> = new Array(requests.length).fill(null);
    let i = 0;
    while (i < requests.length) {
      const seqToIndex = new Map<number, number>();
      let bytes = 0;
      const start = i;
      while (i < requests.length && (i === start || bytes < BATCH_BYTES)) {
        const r = requests[i]!;
        const last = i === requests.length - 1 || bytes + r.body.length + 16 >= BATCH_BYTES;
        const seq = this.nextSeq();
        seqToIndex.set(seq, i);
        bytes = this.frame(bytes, r.type, r.flags | Flags.REQUEST | (last ? Flags.ACK : 0), seq, r.body);
        i++;
        if (last) break;
      }
      const lastSeq = this.seq;
      this.send(this.sendBuf.subarray(0, bytes), op);
      let done = false;
      while (!done) {
        for (const m of this.recv(op, requests[i - 1]!.target)) {
          if (m.type !== MsgType.ERROR) continue;
          const idx = seqToIndex.get(m.seq);
          if (idx === undefined) continue; // stale answer from an earlier, interrupted call
          const e = decodeError(m);
          if (e.errno !== 0) results[idx] = new NetlinkError(e.errno, op, requests[idx]!.target, e.message);
          if (m.seq === lastSeq) done = true;
        }
      }
    }
    return results;
  }

  /**
   * Appends one message to the send buffer at `off` (as encodeMessage would lay it out) and
   * returns the new end. One buffer per socket instead of a Buffer per message and a concat
   * per batch: a cold start frames 30,000 messages.
   */
  private frame(off: number, type: number, flags: number, seq: number, body: Buffer): number {
    const len = HEADER_LENGTH + body.length;
    const end = off + ((len + 3) & ~3);
    if (end > this.sendBuf.length) {
      const bigger = Buffer.alloc(Math.max(end, this.sendBuf.length * 2));
      this.sendBuf.copy(bigger, 0, 0, off);
      this.sendBuf = bigger;
    }
    const b = this.sendBuf;
    b.writeUInt32LE(len, off);
    b.writeUInt16LE(type, off + 4);
    b.writeUInt16LE(flags, off + 6);
    b.writeUInt32LE(seq >>> 0, off + 8);
    b.writeUInt32LE(0, off + 12); // nlmsg_pid: the kernel fills in ours
    body.copy(b, off + HEADER_LENGTH);
    b.fill(0, off + len, end);
    return end;
  }

  /** Like transact for one request, throwing its error. */
  request(req: Request, op = 'request'): void {
    const [err] = this.transact([req], op);
    if (err) throw err;
  }

  /** A non-dump request that answers with data (e.g. RTM_GETLINK by name); throws its error. */
  get(req: Request, op = 'get'): RawMessage[] {
    const seq = this.nextSeq();
    this.send(encodeMessage(req.type, req.flags | Flags.REQUEST | Flags.ACK, seq, req.body), op);
    const out: RawMessage[] = [];
    for (;;) {
      for (const m of this.recv(op, req.target)) {
        if (m.seq !== seq) continue;
        if (m.type !== MsgType.ERROR) {
          out.push(m);
          continue;
        }
        const e = decodeError(m);
        if (e.errno !== 0) throw new NetlinkError(e.errno, op, req.target, e.message);
        return out;
      }
    }
  }

  /** A full dump; retried when the kernel flags it as interrupted by concurrent changes. */
  dump(type: number, body: Buffer, what: string): RawMessage[] {
    return collect((visit, restart) => this.dumpVisit(type, body, what, true, visit, restart));
  }

  /**
   * A full dump handed over one message at a time, as each datagram arrives, and left in the
   * receive buffer: `visit` must not keep the message or its data. Nothing accumulates, so
   * what a visitor makes of 10,000 routes dies young, where a dump kept whole is promoted
   * (issue 13: a periodic resync at 10,000 peers held ~15 MB of messages and decodings at
   * once). An interrupted dump is run again from the start; `restart` runs before it.
   */
  dumpEach(type: number, body: Buffer, what: string, visit: (m: RawMessage) => void, restart: () => void): void {
    this.dumpVisit(type, body, what, false, visit, restart);
  }

  private dumpVisit(type: number, body: Buffer, what: string, copy: boolean, visit: (m: RawMessage) => void, restart: () => void): void {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) restart();
      const seq = this.nextSeq();
      this.send(encodeMessage(type, Flags.REQUEST | Flags.DUMP, seq, body), 'dump');
      let interrupted = false;
      let done = false;
      while (!done) {
        for (const m of this.recv('dump', what, copy)) {
          if (m.seq !== seq) continue;
          if (m.flags & Flags.DUMP_INTR) interrupted = true;
          if (m.type === MsgType.DONE) {
            done = true;
            break;
          }
          if (m.type === MsgType.ERROR) {
            const e = decodeError(m);
            if (e.errno !== 0) throw new NetlinkError(e.errno, 'dump', what, e.message);
            done = true;
            break;
          }
          visit(m);
        }
      }
      if (!interrupted || attempt >= DUMP_RETRIES) return;
    }
  }
}

/** What a visiting dump shows, as a list: emptied when the dump restarts. */
export function collect<T>(each: (visit: (x: T) => void, restart: () => void) => void): T[] {
  const out: T[] = [];
  each(
    (x) => out.push(x),
    () => (out.length = 0),
  );
  return out;
}
