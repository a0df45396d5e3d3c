// Kernel change notifications (links, addresses, IPv4 routes, neighbours and FDB entries)
// on a socket of their own: never mixed with request/dump traffic. The socket is non-blocking
// and drained from the event loop through a uv_poll watcher in native/. If the receive queue
// overflows the kernel drops events and recv reports ENOBUFS: we surface that as 'overflow'
// so the consumer does a full resync instead of trusting a partial picture.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { native, EAGAIN } from '../netns/native';
import { decodeMessages, MsgType, type RawMessage } from './frame';
import { ENOBUFS } from './errors';
import { decodeAddr, decodeFdb, decodeLink, decodeNeigh, decodeRoute } from './handle';
import { AF_BRIDGE, type AddrState, type FdbState, type LinkState, type NeighState, type RouteState } from './types';

const GROUP_LINK = 1;
const GROUP_NEIGH = 3;
const GROUP_IPV4_IFADDR = 5;
const GROUP_IPV4_ROUTE = 7;
const EVENT_BUF = 16 * 1024 * 1024;

export type NetlinkEvent =
  | { kind: 'link'; action: 'new' | 'del'; link: LinkState }
  | { kind: 'addr'; action: 'new' | 'del'; addr: AddrState }
  | { kind: 'route'; action: 'new' | 'del'; route: RouteState }
  | { kind: 'neigh'; action: 'new' | 'del'; neigh: NeighState }
  | { kind: 'fdb'; action: 'new' | 'del'; fdb: FdbState };

export function decodeEvent(m: RawMessage): NetlinkEvent | undefined {
  switch (m.type) {
    case MsgType.NEWLINK:
    case MsgType.DELLINK: {
      const link = decodeLink(m);
      return link && { kind: 'link', action: m.type === MsgType.NEWLINK ? 'new' : 'del', link };
    }
    case MsgType.NEWADDR:
    case MsgType.DELADDR: {
      const addr = decodeAddr(m);
      return addr && { kind: 'addr', action: m.type === MsgType.NEWADDR ? 'new' : 'del', addr };
    }
    case MsgType.NEWROUTE:
    case MsgType.DELROUTE: {
      const route = decodeRoute(m);
      return route && { kind: 'route', action: m.type === MsgType.NEWROUTE ? 'new' : 'del', route };
    }
    case MsgType.NEWNEIGH:
    case MsgType.DELNEIGH: {
      const action = m.type === MsgType.NEWNEIGH ? 'new' : 'del';
      // ndm_family is the first byte of the body.
      if (m.data.length > 0 && m.data[0] === AF_BRIDGE) {
        const fdb = decodeFdb(m);
        return fdb && { kind: 'fdb', action, fdb };
      }
      const neigh = decodeNeigh(m);
      return neigh && { kind: 'neigh', action, neigh };
    }
    default:
      return undefined;
  }
}

export interface EventSocketEvents {
  event: [NetlinkEvent];
  overflow: [];
  error: [Error];
}

export class NetlinkEventSocket extends EventEmitter<EventSocketEvents> {
  private fd: number;
  private watch: unknown;
  private readonly buf = Buffer.allocUnsafe(256 * 1024);
  private closed = false;

  constructor(netns?: string) {
    super();
    this.fd = native().netlinkOpen(0, [GROUP_LINK, GROUP_NEIGH, GROUP_IPV4_IFADDR, GROUP_IPV4_ROUTE], netns ?? null, EVENT_BUF, 0, true);
    this.watch = native().watchReadable(this.fd, () => this.drain());
  }

  /** Do not keep the process alive just for kernel events. */
  unref(): void {
    native().unrefWatch(this.watch);
  }

  private drain(): void {
    // Bounded per wakeup so a flood of events cannot starve timers and I/O.
    for (let i = 0; i < 1024 && !this.closed; i++) {
      let n: number;
      try {
        n = native().netlinkRecv(this.fd, this.buf);
      } catch (err) {
        if ((err as { errno?: number }).errno === ENOBUFS) {
          this.emit('overflow');
          continue;
        }
        this.emit('error', err as Error);
        return;
      }
      if (n === -EAGAIN) return;
      for (const m of decodeMessages(this.buf.subarray(0, n))) {
        const ev = decodeEvent(m);
        if (ev) this.emit('event', ev);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native().stopWatch(this.watch);
    fs.closeSync(this.fd);
  }
}
