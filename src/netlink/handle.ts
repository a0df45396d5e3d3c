// Typed rtnetlink operations over one NetlinkSocket (one network namespace). Every mutation
// is idempotent by construction (CREATE|REPLACE) and deletions treat "already gone" as done,
// so drivers can converge by re-applying. Mutations can also be built as Requests and sent
// in one batch through `apply`.
import { ip4Bytes, ip4Of, macBytes, macOf } from '../ip/bytes';
import { collect, NetlinkSocket, type Request } from './socket';
import {
  encodeAddress, encodeLink, encodeLinkInfo, encodeNeighbor, encodeRoute, encodeVethData, encodeVxlanData,
  Flags, MsgType, parseAddress, parseLink, parseLinkInfo, parseVxlan, type RawMessage,
} from './codec';
import { isGone, NetlinkError } from './errors';
import { decodeFdbBody, decodeNeighBody, decodeRouteBody, encodeNeighBody, encodeRouteBody } from './fast-codec';

const NTF_SELF = 0x02;
import {
  AF_BRIDGE, AF_INET, NUD_PERMANENT, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RTN_UNICAST, RTNH_F_ONLINK,
  type AddrState, type FdbState, type LinkState, type NeighState, type RouteState,
} from './types';

const CREATE_REPLACE = Flags.CREATE | Flags.REPLACE;

// ---- decoding ----

export function decodeLink(m: RawMessage): LinkState | undefined {
  try {
    const { data, attrs } = parseLink(m.data);
    let kind: string | undefined;
    let vxlan: LinkState['vxlan'];
    if (attrs.linkinfo) {
      const info = parseLinkInfo(attrs.linkinfo);
      kind = info.kind;
      if (kind === 'vxlan' && info.data) {
        const v = parseVxlan(info.data);
        vxlan = {
          vni: v.id ?? 0,
          local: ip4Of(v.local),
          port: v.port ? v.port.readUInt16BE(0) : undefined,
          learning: (v.learning ?? 1) !== 0,
          link: v.link,
        };
      }
    }
    return {
      index: data.index ?? 0,
      name: attrs.ifname ?? '',
      kind,
      mtu: attrs.mtu ?? 0,
      up: Boolean(data.flags?.up),
      mac: macOf(attrs.address),
      master: attrs.master,
      vxlan,
    };
  } catch {
    return undefined;
  }
}

export function decodeAddr(m: RawMessage): AddrState | undefined {
  try {
    const { data, attrs } = parseAddress(m.data);
    if (data.family !== AF_INET) return undefined;
    const ip = ip4Of(attrs.local ?? attrs.address);
    if (!ip) return undefined;
    return { index: data.index ?? 0, ip, prefixLen: data.prefixlen ?? 0 };
  } catch {
    return undefined;
  }
}

export function decodeRoute(m: RawMessage): RouteState | undefined {
  return decodeRouteBody(m.data);
}

export function decodeNeigh(m: RawMessage): NeighState | undefined {
  return decodeNeighBody(m.data);
}

export function decodeFdb(m: RawMessage): FdbState | undefined {
  return decodeFdbBody(m.data);
}

// ---- request builders (pure) ----

export interface RouteSpec {
  dst: string;
  dstLen: number;
  gateway?: string;
  oif: number;
  onlink?: boolean;
  protocol: number;
  scope?: number;
  table?: number;
  /** RTN_UNICAST when omitted. */
  type?: number;
}

function routeBody(r: RouteSpec): Buffer {
  return encodeRouteBody({
    dst: r.dst,
    dstLen: r.dstLen,
    gateway: r.gateway,
    oif: r.oif,
    protocol: r.protocol,
    scope: r.scope ?? RT_SCOPE_UNIVERSE,
    type: r.type ?? RTN_UNICAST,
    table: r.table ?? RT_TABLE_MAIN,
    flags: r.onlink ? RTNH_F_ONLINK : 0,
  });
}

export const req = {
  routeReplace(r: RouteSpec): Request {
    return { type: MsgType.NEWROUTE, flags: CREATE_REPLACE, body: routeBody(r), target: `route ${r.dst}/${r.dstLen}` };
  },
  routeDelete(r: RouteSpec): Request {
    return { type: MsgType.DELROUTE, flags: 0, body: routeBody(r), target: `route ${r.dst}/${r.dstLen}` };
  },
  neighReplace(index: number, ip: string, mac: string): Request {
    return {
      type: MsgType.NEWNEIGH,
      flags: CREATE_REPLACE,
      body: encodeNeighBody(AF_INET, index, NUD_PERMANENT, 0, ip, mac),
      target: `neighbour ${ip}`,
    };
  },
  neighDelete(index: number, ip: string): Request {
    return {
      type: MsgType.DELNEIGH,
      flags: 0,
      body: encodeNeighBody(AF_INET, index, 0, 0, ip, undefined),
      target: `neighbour ${ip}`,
    };
  },
  fdbReplace(index: number, mac: string, dst: string): Request {
    return {
      type: MsgType.NEWNEIGH,
      flags: CREATE_REPLACE,
      body: encodeNeighBody(AF_BRIDGE, index, NUD_PERMANENT, NTF_SELF, dst, mac),
      target: `fdb ${mac}`,
    };
  },
  fdbDelete(index: number, mac: string, dst?: string): Request {
    return {
      type: MsgType.DELNEIGH,
      flags: 0,
      body: encodeNeighBody(AF_BRIDGE, index, 0, NTF_SELF, dst, mac),
      target: `fdb ${mac}`,
    };
  },
  addrReplace(index: number, ip: string, prefixLen: number): Request {
    return {
      type: MsgType.NEWADDR,
      flags: CREATE_REPLACE,
      body: encodeAddress({ family: AF_INET, prefixlen: prefixLen, index, scope: RT_SCOPE_UNIVERSE }, { local: ip4Bytes(ip), address: ip4Bytes(ip) }),
      target: `address ${ip}/${prefixLen}`,
    };
  },
  addrDelete(index: number, ip: string, prefixLen: number): Request {
    return {
      type: MsgType.DELADDR,
      flags: 0,
      body: encodeAddress({ family: AF_INET, prefixlen: prefixLen, index }, { local: ip4Bytes(ip), address: ip4Bytes(ip) }),
      target: `address ${ip}/${prefixLen}`,
    };
  },
  linkSet(index: number, name: string, change: { mtu?: number; up?: boolean; master?: number; mac?: string }): Request {
    const data: { family: number; index: number; flags?: { up?: true }; change?: { up?: true } } = { family: 0, index };
    if (change.up !== undefined) {
      data.flags = change.up ? { up: true } : {};
      data.change = { up: true };
    }
    return {
      type: MsgType.NEWLINK,
      flags: 0,
      body: encodeLink(data, {
        ...(change.mtu !== undefined ? { mtu: change.mtu } : {}),
        ...(change.master !== undefined ? { master: change.master } : {}),
        ...(change.mac !== undefined ? { address: macBytes(change.mac) } : {}),
      }),
      target: `link ${name}`,
    };
  },
  linkDelete(index: number, name: string): Request {
    return { type: MsgType.DELLINK, flags: 0, body: encodeLink({ family: 0, index }, {}), target: `link ${name}` };
  },
};

export interface VxlanSpec {
  name: string;
  vni: number;
  local: string;
  port: number;
  lowerIndex: number;
  mac: string;
  mtu: number;
  learning: boolean;
}

export interface VethSpec {
  name: string;
  mtu: number;
  peerName: string;
  /** fd of the namespace the peer is created in (IFLA_NET_NS_FD); default: ours. */
  peerNetnsFd?: number;
  peerMac?: string;
  mac?: string;
}

export class NetlinkHandle {
  readonly sock: NetlinkSocket;

  constructor(sock: NetlinkSocket) {
    this.sock = sock;
  }

  static open(opts: { netns?: string } = {}): NetlinkHandle {
    return new NetlinkHandle(NetlinkSocket.open(opts));
  }

  close(): void {
    this.sock.close();
  }

  /** One batch; per request null (done) or its error. Deletes of missing objects count as done. */
  apply(requests: readonly Request[], op = 'apply'): Array<NetlinkError | null> {
    return this.sock.transact(requests, op).map((e, i) =>
      e && requests[i]!.type % 4 === 1 /* RTM_DEL* */ && isGone(e) ? null : e,
    );
  }

  do(request: Request, op = 'apply'): void {
    const [err] = this.apply([request], op);
    if (err) throw err;
  }

  // ---- links ----

  listLinks(): LinkState[] {
    return this.sock
      .dump(MsgType.GETLINK, encodeLink({ family: 0 }, {}), 'links')
      .filter((m) => m.type === MsgType.NEWLINK)
      .map(decodeLink)
      .filter((l): l is LinkState => l !== undefined);
  }

  getLink(name: string): LinkState | undefined {
    return this.listLinks().find((l) => l.name === name);
  }

  createVxlan(v: VxlanSpec): void {
    const data = encodeVxlanData({
      id: v.vni,
      local: ip4Bytes(v.local),
      link: v.lowerIndex,
      port: Buffer.from([v.port >> 8, v.port & 0xff]),
      learning: v.learning ? 1 : 0,
    });
    this.sock.request(
      {
        type: MsgType.NEWLINK,
        flags: Flags.CREATE | Flags.EXCL,
        body: encodeLink({ family: 0 }, { ifname: v.name, mtu: v.mtu, address: macBytes(v.mac), linkinfo: encodeLinkInfo('vxlan', data) }),
        target: `link ${v.name}`,
      },
      'create',
    );
  }

  createBridge(name: string, mtu: number): void {
    this.createLinkOfKind(name, 'bridge', mtu);
  }

  /** A link of a kind without kind data (bridge; wireguard, whose config goes over generic netlink). */
  createLinkOfKind(name: string, kind: string, mtu?: number): void {
    this.sock.request(
      {
        type: MsgType.NEWLINK,
        flags: Flags.CREATE | Flags.EXCL,
        body: encodeLink({ family: 0 }, { ifname: name, ...(mtu !== undefined ? { mtu } : {}), linkinfo: encodeLinkInfo(kind) }),
        target: `link ${name}`,
      },
      'create',
    );
  }

  createVeth(v: VethSpec): void {
    const peer = encodeVethData(
      { family: 0 },
      {
        ifname: v.peerName,
        mtu: v.mtu,
        ...(v.peerNetnsFd !== undefined ? { netNsFd: v.peerNetnsFd } : {}),
        ...(v.peerMac ? { address: macBytes(v.peerMac) } : {}),
      },
    );
    this.sock.request(
      {
        type: MsgType.NEWLINK,
        flags: Flags.CREATE | Flags.EXCL,
        body: encodeLink({ family: 0 }, { ifname: v.name, mtu: v.mtu, ...(v.mac ? { address: macBytes(v.mac) } : {}), linkinfo: encodeLinkInfo('veth', peer) }),
        target: `link ${v.name}`,
      },
      'create',
    );
  }

  setLink(link: Pick<LinkState, 'index' | 'name'>, change: { mtu?: number; up?: boolean; master?: number; mac?: string }): void {
    this.do(req.linkSet(link.index, link.name, change), 'set');
  }

  deleteLink(link: Pick<LinkState, 'index' | 'name'>): void {
    this.do(req.linkDelete(link.index, link.name), 'delete');
  }

  // ---- addresses ----

  listAddrs(index?: number): AddrState[] {
    return this.sock
      .dump(MsgType.GETADDR, encodeAddress({ family: AF_INET }, {}), 'addresses')
      .filter((m) => m.type === MsgType.NEWADDR)
      .map(decodeAddr)
      .filter((a): a is AddrState => a !== undefined && (index === undefined || a.index === index));
  }

  // ---- routes ----

  listRoutes(filter: { table?: number; protocol?: number } = {}): RouteState[] {
    return collect((visit, restart) => this.eachRoute(filter, visit, restart));
  }

  /** Routes one at a time as the dump arrives (NetlinkSocket.dumpEach: nothing is kept). */
  eachRoute(filter: { table?: number; protocol?: number }, visit: (r: RouteState) => void, restart: () => void): void {
    const table = filter.table ?? RT_TABLE_MAIN;
    const keep = (r: RouteState): boolean => r.table === table && (filter.protocol === undefined || r.protocol === filter.protocol);
    this.eachDecoded(MsgType.GETROUTE, encodeRoute({ family: AF_INET }, {}), 'routes', MsgType.NEWROUTE, decodeRoute, keep, visit, restart);
  }

  // ---- neighbours and FDB ----

  listNeighs(index?: number): NeighState[] {
    return collect((visit, restart) => this.eachNeigh(index, visit, restart));
  }

  eachNeigh(index: number | undefined, visit: (n: NeighState) => void, restart: () => void): void {
    const keep = (n: NeighState): boolean => index === undefined || n.index === index;
    this.eachDecoded(MsgType.GETNEIGH, encodeNeighbor({ family: AF_INET }, {}), 'neighbours', MsgType.NEWNEIGH, decodeNeigh, keep, visit, restart);
  }

  /** FDB dumps return every device's entries: filtered by ifindex here. */
  listFdb(index: number): FdbState[] {
    return collect((visit, restart) => this.eachFdb(index, visit, restart));
  }

  eachFdb(index: number, visit: (f: FdbState) => void, restart: () => void): void {
    this.eachDecoded(MsgType.GETNEIGH, encodeNeighbor({ family: AF_BRIDGE }, {}), 'fdb', MsgType.NEWNEIGH, decodeFdb, (f) => f.index === index, visit, restart);
  }

  /** A dump's messages of type `kind`, decoded and filtered one at a time. */
  private eachDecoded<T>(type: number, body: Buffer, what: string, kind: number, decode: (m: RawMessage) => T | undefined, keep: (x: T) => boolean, visit: (x: T) => void, restart: () => void): void {
    this.sock.dumpEach(
      type,
      body,
      what,
      (m) => {
        const x = m.type === kind ? decode(m) : undefined;
        if (x !== undefined && keep(x)) visit(x);
      },
      restart,
    );
  }
}

