// The CNI plugin's rtnetlink operations, over the seam's socket (src/netlink/socket.ts, created
// inside a namespace with setns in native code) with messages from rtnl-codec.ts, so the
// plugin never loads the `netlink` package's codecs. Errors are the seam's NetlinkError.
//
// Things that bit or matter:
// - The native open enables NETLINK_GET_STRICT_CHK, so dump requests must have zeroed headers;
//   link dumps can then be filtered in the kernel by IFLA_LINKINFO kind and IFLA_MASTER.
import { NetlinkSocket } from '../netlink/socket';
import { NetlinkError } from '../netlink/errors';
import { nested, strAttr, u32Attr } from '../netlink/attrs';
import {
  decodeAddr, decodeLink, decodeRoute, ifaddrmsg, ifinfomsg, rtmsg,
  IFLA, IFLA_INFO, RT_TABLE_MAIN, RTM, type Addr, type Link, type Msg, type Req, type Route,
} from './rtnl-codec';

/** One synchronous rtnetlink socket (src/netlink/socket.ts), inside the namespace at `netns`. */
export class Rtnl {
  private constructor(private readonly sock: NetlinkSocket, readonly where: string) {}

  static open(netns?: string): Rtnl {
    return new Rtnl(NetlinkSocket.open(netns ? { netns } : {}), netns ?? 'host');
  }

  close(): void {
    this.sock.close();
  }

  /** Sends all requests in one batch; per request null (done) or its error. */
  batch(reqs: readonly Req[], op = 'apply'): Array<NetlinkError | null> {
    return this.sock.transact(reqs, op);
  }

  do(req: Req, op = 'apply'): void {
    this.sock.request(req, op);
  }

  /** A non-dump request that answers with data (RTM_GETLINK by name); throws its error. */
  get(req: Req, op = 'get'): Msg[] {
    return this.sock.get(req, op);
  }

  /** A full dump, retried when the kernel flags it as interrupted by concurrent changes. */
  dump(type: number, body: Buffer, what: string): Msg[] {
    return this.sock.dump(type, body, what);
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

