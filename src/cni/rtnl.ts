// A minimal synchronous rtnetlink client for the CNI plugin, over the same native socket as
// src/netlink (created inside a namespace with setns in native code); messages come from
// rtnl-codec.ts. Errors are the seam's NetlinkError, so callers branch on errno.
//
// Things that bit or matter:
// - Every request carries NLM_F_ACK so a batch ends when every sequence number is answered; the
//   kernel processes a batch in order and one failing message does not stop the rest.
// - The native open enables NETLINK_GET_STRICT_CHK, so dump requests must have zeroed headers;
//   link dumps can then be filtered in the kernel by IFLA_LINKINFO kind and IFLA_MASTER.
import * as fs from 'node:fs';
import { native, EAGAIN } from '../netns/native';
import { ETIMEDOUT, NetlinkError } from '../netlink/errors';
import {
  decodeAddr, decodeError, decodeLink, decodeMessages, decodeRoute, encodeMessage, ifaddrmsg, ifinfomsg, nested, rtmsg, strAttr, u32Attr,
  IFLA, IFLA_INFO, NLM_F, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, RT_TABLE_MAIN, RTM, type Addr, type Link, type Msg, type Req, type Route,
} from './rtnl-codec';


const RECV_BYTES = 64 * 1024;
const SOCKET_BUF = 1024 * 1024;
const RECV_TIMEOUT_MS = 5000;
const DUMP_RETRIES = 5;

/** One synchronous rtnetlink socket, created inside the namespace at `netns` (default: ours). */
export class Rtnl {
  private seq = (Math.random() * 0x7fffffff) >>> 0;
  private readonly buf = Buffer.allocUnsafe(RECV_BYTES);
  private closed = false;

  private constructor(private readonly fd: number, readonly where: string) {}

  static open(netns?: string): Rtnl {
    let fd: number;
    try {
      fd = native().netlinkOpen(0, [], netns ?? null, SOCKET_BUF, RECV_TIMEOUT_MS, false);
    } catch (err) {
      throw new NetlinkError((err as { errno?: number }).errno ?? 0, 'open', netns ?? 'netlink socket', undefined, err);
    }
    return new Rtnl(fd, netns ?? 'host');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }

  private next(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  private send(buf: Buffer, op: string, target: string): void {
    try {
      native().netlinkSend(this.fd, buf);
    } catch (err) {
      throw new NetlinkError((err as { errno?: number }).errno ?? 0, op, target, undefined, err);
    }
  }

  private recv(op: string, target: string): Msg[] {
    let n: number;
    try {
      n = native().netlinkRecv(this.fd, this.buf);
    } catch (err) {
      throw new NetlinkError((err as { errno?: number }).errno ?? 0, op, target, undefined, err);
    }
    if (n === -EAGAIN) throw new NetlinkError(ETIMEDOUT, op, target, 'no answer from the kernel');
    if (n > this.buf.length) throw new NetlinkError(ETIMEDOUT, op, target, `reply truncated (${n} bytes)`);
    return decodeMessages(Buffer.from(this.buf.subarray(0, n)));
  }

  /** Sends all requests in one sendmsg; per request null (done) or its error. */
  batch(reqs: readonly Req[], op = 'apply'): Array<NetlinkError | null> {
    const results: Array<NetlinkError | null> = reqs.map(() => null);
    if (reqs.length === 0) return results;
    const bySeq = new Map<number, number>();
    const parts = reqs.map((r, i) => {
      const seq = this.next();
      bySeq.set(seq, i);
      return encodeMessage(r.type, r.flags | NLM_F.REQUEST | NLM_F.ACK, seq, r.body);
    });
    const last = reqs[reqs.length - 1]!.target;
    this.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts), op, last);
    while (bySeq.size > 0) {
      for (const m of this.recv(op, last)) {
        if (m.type !== NLMSG_ERROR) continue;
        const i = bySeq.get(m.seq);
        if (i === undefined) continue; // a stale answer to an earlier, interrupted call
        bySeq.delete(m.seq);
        const e = decodeError(m);
        if (e.errno !== 0) results[i] = new NetlinkError(e.errno, op, reqs[i]!.target, e.message);
      }
    }
    return results;
  }

  do(req: Req, op = 'apply'): void {
    const [err] = this.batch([req], op);
    if (err) throw err;
  }

  /** A non-dump request that answers with data (RTM_GETLINK by name); throws its error. */
  get(req: Req, op = 'get'): Msg[] {
    const seq = this.next();
    this.send(encodeMessage(req.type, req.flags | NLM_F.REQUEST | NLM_F.ACK, seq, req.body), op, req.target);
    const out: Msg[] = [];
    for (;;) {
      for (const m of this.recv(op, req.target)) {
        if (m.seq !== seq) continue;
        if (m.type !== NLMSG_ERROR) {
          out.push(m);
          continue;
        }
        const e = decodeError(m);
        if (e.errno !== 0) throw new NetlinkError(e.errno, op, req.target, e.message);
        return out;
      }
    }
  }

  /** A full dump, retried when the kernel flags it as interrupted by concurrent changes. */
  dump(type: number, body: Buffer, what: string): Msg[] {
    for (let attempt = 0; ; attempt++) {
      const seq = this.next();
      this.send(encodeMessage(type, NLM_F.REQUEST | NLM_F.DUMP, seq, body), 'dump', what);
      const out: Msg[] = [];
      let interrupted = false;
      let done = false;
      while (!done) {
        for (const m of this.recv('dump', what)) {
          if (m.seq !== seq) continue;
          if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (m.type === NLMSG_DONE) {
            done = true;
            break;
          }
          if (m.type === NLMSG_ERROR) {
            const e = decodeError(m);
            if (e.errno !== 0) throw new NetlinkError(e.errno, 'dump', what, e.message);
            done = true;
            break;
          }
          out.push(m);
        }
      }
      if (!interrupted || attempt >= DUMP_RETRIES) return out;
    }
  }

  // ---- the operations the plugin uses ----

  /** RTM_GETLINK by name: one round trip, no dump. undefined when there is no such link. */
  getLink(name: string): Link | undefined {
    try {
      const msgs = this.get({ type: RTM.GETLINK, flags: 0, body: Buffer.concat([ifinfomsg(), strAttr(IFLA.IFNAME, name)]), target: `link ${name}` });
      const m = msgs.find((x) => x.type === RTM.NEWLINK);
      return m ? decodeLink(m.data) : undefined;
    } catch (err) {
      if (err instanceof NetlinkError && err.errnoName === 'ENODEV') return undefined;
      throw err;
    }
  }

  /** Links filtered in the kernel by kind and/or master (needs NETLINK_GET_STRICT_CHK). */
  listLinks(filter: { kind?: string; master?: number } = {}): Link[] {
    const attrs: Buffer[] = [];
    if (filter.master !== undefined) attrs.push(u32Attr(IFLA.MASTER, filter.master));
    if (filter.kind !== undefined) attrs.push(nested(IFLA.LINKINFO, [strAttr(IFLA_INFO.KIND, filter.kind)]));
    return this.dump(RTM.GETLINK, Buffer.concat([ifinfomsg(), ...attrs]), 'links')
      .filter((m) => m.type === RTM.NEWLINK)
      .map((m) => decodeLink(m.data))
      .filter((l) => (filter.kind === undefined || l.kind === filter.kind) && (filter.master === undefined || l.master === filter.master));
  }

  listAddrs(index: number): Addr[] {
    return this.dump(RTM.GETADDR, ifaddrmsg({ index }), 'addresses')
      .filter((m) => m.type === RTM.NEWADDR)
      .map((m) => decodeAddr(m.data))
      .filter((a): a is Addr => a !== undefined && a.index === index);
  }

  listRoutes(): Route[] {
    return this.dump(RTM.GETROUTE, rtmsg(), 'routes')
      .filter((m) => m.type === RTM.NEWROUTE)
      .map((m) => decodeRoute(m.data))
      .filter((r): r is Route => r !== undefined && r.table === RT_TABLE_MAIN);
  }
}

