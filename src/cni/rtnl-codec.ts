// Encoding and decoding of the dozen rtnetlink messages the CNI plugin sends and reads, by
// hand: the `netlink` package's codecs (src/netlink/codec.ts) take 25-40 ms to load, more than
// the reference bridge plugin's whole ADD, in a process started per pod. Unit tests
// (test/unit/cni-rtnl.test.ts) cross-check every builder against the package's encoders.
// Links are addressed by name (ifi_index 0 + IFLA_IFNAME) wherever the kernel allows it, which
// spares dumping every link of the host namespace (a dump grows with the pod count).
import { ip4Bytes, ip4Of, macBytes, macOf } from '../ip/bytes';
import { attr, nested, parseAttrs, strAttr, u32Attr, u8Attr } from '../netlink/attrs';
import { Flags, MsgType } from '../netlink/frame';
import type { Request as Req } from '../netlink/socket';
import type { AddrState, LinkState } from '../netlink/types';

// Framing and attributes live in the seam (src/netlink/frame.ts, attrs.ts); framing is
// re-exported under the names the plugin's files use.
export { decodeError, decodeMessages, encodeMessage, type DecodedError, type RawMessage as Msg } from '../netlink/frame';
export type { Request as Req } from '../netlink/socket';
export const RTM = MsgType;
export const NLM_F = Flags;

export const IFF_UP = 0x1;
export const AF_INET = 2;
export const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28 } as const;
export const IFLA_INFO = { KIND: 1, DATA: 2, SLAVE_KIND: 4, SLAVE_DATA: 5 } as const;
export const VETH_INFO_PEER = 1;
export const IFLA_BRPORT_MODE = 4; // hairpin
export const IFA = { ADDRESS: 1, LOCAL: 2 } as const;
export const RTA = { DST: 1, OIF: 4, GATEWAY: 5, TABLE: 15 } as const;
export const RT_TABLE_MAIN = 254;
export const RTN_UNICAST = 1;
export const RTPROT_BOOT = 3;

// ---- encoding ----

export function ifinfomsg(m: { family?: number; index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(m.family ?? 0, 0);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((m.change ?? 0) >>> 0, 12);
  return b;
}
export function ifaddrmsg(m: { prefixLen?: number; scope?: number; index?: number } = {}): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(AF_INET, 0);
  b.writeUInt8(m.prefixLen ?? 0, 1);
  b.writeUInt8(m.scope ?? 0, 3);
  b.writeUInt32LE(m.index ?? 0, 4);
  return b;
}
export function rtmsg(m: { dstLen?: number; table?: number; protocol?: number; scope?: number; type?: number } = {}): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(AF_INET, 0);
  b.writeUInt8(m.dstLen ?? 0, 1);
  b.writeUInt8(m.table ?? 0, 4);
  b.writeUInt8(m.protocol ?? 0, 5);
  b.writeUInt8(m.scope ?? 0, 6);
  b.writeUInt8(m.type ?? 0, 7);
  return b;
}

// ---- decoding ----

function str(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}
/** The seam's link view without the VXLAN details the plugin never reads. */
export type Link = Omit<LinkState, 'vxlan'>;

export function decodeLink(data: Buffer): Link {
  const a = parseAttrs(data, 16);
  const info = a.get(IFLA.LINKINFO);
  return {
    index: data.readInt32LE(4),
    name: str(a.get(IFLA.IFNAME)) ?? '',
    kind: info ? str(parseAttrs(info).get(IFLA_INFO.KIND)) : undefined,
    mtu: a.get(IFLA.MTU)?.readUInt32LE(0) ?? 0,
    up: (data.readUInt32LE(8) & IFF_UP) !== 0,
    mac: macOf(a.get(IFLA.ADDRESS)),
    master: a.get(IFLA.MASTER)?.readUInt32LE(0),
  };
}

export type Addr = AddrState;

export function decodeAddr(data: Buffer): Addr | undefined {
  if (data[0] !== AF_INET) return undefined;
  const a = parseAttrs(data, 8);
  const ip = ip4Of(a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS));
  return ip ? { index: data.readUInt32LE(4), ip, prefixLen: data[1]! } : undefined;
}

export interface Route {
  dst: string;
  dstLen: number;
  gateway: string | undefined;
  oif: number | undefined;
  table: number;
}

export function decodeRoute(data: Buffer): Route | undefined {
  if (data[0] !== AF_INET) return undefined;
  const a = parseAttrs(data, 12);
  return {
    dst: ip4Of(a.get(RTA.DST)) ?? '0.0.0.0',
    dstLen: data[1]!,
    gateway: ip4Of(a.get(RTA.GATEWAY)),
    oif: a.get(RTA.OIF)?.readUInt32LE(0),
    table: a.get(RTA.TABLE)?.readUInt32LE(0) ?? data[4]!,
  };
}


// ---- request builders (pure) ----

export const build = {
  /** Set flags/MTU on an existing link found by name (RTM_NEWLINK without NLM_F_CREATE). */
  linkSet(name: string, change: { up?: boolean; mtu?: number }): Req {
    const attrs = [strAttr(IFLA.IFNAME, name)];
    if (change.mtu !== undefined) attrs.push(u32Attr(IFLA.MTU, change.mtu));
    const hdr = change.up === undefined ? ifinfomsg() : ifinfomsg({ flags: change.up ? IFF_UP : 0, change: IFF_UP });
    return { type: RTM.NEWLINK, flags: 0, body: Buffer.concat([hdr, ...attrs]), target: `link ${name}` };
  },
  linkDelete(name: string): Req {
    return { type: RTM.DELLINK, flags: 0, body: Buffer.concat([ifinfomsg(), strAttr(IFLA.IFNAME, name)]), target: `link ${name}` };
  },
  bridgeCreate(name: string, mtu: number, mac: string): Req {
    return {
      type: RTM.NEWLINK,
      flags: NLM_F.CREATE | NLM_F.EXCL,
      body: Buffer.concat([
        ifinfomsg({ flags: IFF_UP, change: IFF_UP }),
        strAttr(IFLA.IFNAME, name),
        u32Attr(IFLA.MTU, mtu),
        attr(IFLA.ADDRESS, macBytes(mac)),
        nested(IFLA.LINKINFO, [strAttr(IFLA_INFO.KIND, 'bridge')]),
      ]),
      target: `link ${name}`,
    };
  },
  /**
   * A veth pair, host end up and enslaved to `master`, peer created directly in the namespace
   * open at `peerNetnsFd` under its final name: one message, nothing to move later.
   */
  vethCreate(v: { name: string; mac: string; mtu: number; master: number; peerName: string; peerMac: string; peerNetnsFd: number }): Req {
    // The peer cannot be created up: the kernel answers ENOTCONN when it is given IFF_UP
    // along with IFLA_NET_NS_FD (seen on 6.18). It is brought up with its address instead.
    const peer = Buffer.concat([
      ifinfomsg(),
      strAttr(IFLA.IFNAME, v.peerName),
      u32Attr(IFLA.MTU, v.mtu),
      attr(IFLA.ADDRESS, macBytes(v.peerMac)),
      u32Attr(IFLA.NET_NS_FD, v.peerNetnsFd),
    ]);
    return {
      type: RTM.NEWLINK,
      flags: NLM_F.CREATE | NLM_F.EXCL,
      body: Buffer.concat([
        ifinfomsg({ flags: IFF_UP, change: IFF_UP }),
        strAttr(IFLA.IFNAME, v.name),
        u32Attr(IFLA.MTU, v.mtu),
        attr(IFLA.ADDRESS, macBytes(v.mac)),
        u32Attr(IFLA.MASTER, v.master),
        nested(IFLA.LINKINFO, [strAttr(IFLA_INFO.KIND, 'veth'), nested(IFLA_INFO.DATA, [attr(VETH_INFO_PEER, peer)])]),
      ]),
      target: `link ${v.name}`,
    };
  },
  /** `ip link set NAME type bridge_slave hairpin on|off`. */
  bridgePortHairpin(name: string, on: boolean): Req {
    return {
      type: RTM.NEWLINK,
      flags: 0,
      body: Buffer.concat([
        ifinfomsg(),
        strAttr(IFLA.IFNAME, name),
        nested(IFLA.LINKINFO, [strAttr(IFLA_INFO.SLAVE_KIND, 'bridge'), nested(IFLA_INFO.SLAVE_DATA, [u8Attr(IFLA_BRPORT_MODE, on ? 1 : 0)])]),
      ]),
      target: `bridge port ${name}`,
    };
  },
  addrReplace(index: number, ip: string, prefixLen: number): Req {
    const b = ip4Bytes(ip);
    return {
      type: RTM.NEWADDR,
      flags: NLM_F.CREATE | NLM_F.REPLACE,
      body: Buffer.concat([ifaddrmsg({ prefixLen, index }), attr(IFA.LOCAL, b), attr(IFA.ADDRESS, b)]),
      target: `address ${ip}/${prefixLen}`,
    };
  },
  /** A gateway route in the main table, `ip route replace DST/LEN via GW dev OIF`. */
  routeReplace(r: { dst: string; dstLen: number; gateway: string; oif: number; protocol?: number }): Req {
    const attrs = [attr(RTA.GATEWAY, ip4Bytes(r.gateway)), u32Attr(RTA.OIF, r.oif)];
    if (r.dstLen > 0) attrs.unshift(attr(RTA.DST, ip4Bytes(r.dst)));
    return {
      type: RTM.NEWROUTE,
      flags: NLM_F.CREATE | NLM_F.REPLACE,
      body: Buffer.concat([rtmsg({ dstLen: r.dstLen, table: RT_TABLE_MAIN, protocol: r.protocol ?? RTPROT_BOOT, scope: 0, type: RTN_UNICAST }), ...attrs]),
      target: `route ${r.dst}/${r.dstLen}`,
    };
  },
};
