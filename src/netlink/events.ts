// Kernel change notifications (links, addresses, IPv4 routes, neighbours and FDB entries)
// on a socket of their own (group-socket.ts). An overflowed receive queue is surfaced as
// 'overflow' so the consumer does a full resync instead of trusting a partial picture.
import { EventEmitter } from 'node:events';
import { MsgType, type RawMessage } from './frame';
import { NetlinkGroupSocket } from './group-socket';
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
  private readonly sock: NetlinkGroupSocket;

  constructor(netns?: string) {
    super();
    this.sock = new NetlinkGroupSocket(0, [GROUP_LINK, GROUP_NEIGH, GROUP_IPV4_IFADDR, GROUP_IPV4_ROUTE], netns, EVENT_BUF, {
      message: (m) => {
        const ev = decodeEvent(m);
        if (ev) this.emit('event', ev);
      },
      overflow: () => this.emit('overflow'),
      error: (err) => this.emit('error', err),
    });
  }

  /** Do not keep the process alive just for kernel events. */
  unref(): void {
    this.sock.unref();
  }

  close(): void {
    this.sock.close();
  }
}
