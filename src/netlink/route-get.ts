// RTM_GETROUTE for one destination: the kernel's own answer to "which route does a packet to X
// take" (what `ip route get fibmatch X` prints), for `twillctl trace`.
//
// With NETLINK_GET_STRICT_CHK on (our sockets set it) the kernel refuses a get-route request
// whose header carries a table, protocol, scope or type, or attributes beyond the lookup keys:
// the body is built by hand with only rtm_family, rtm_dst_len = 32, rtm_flags and RTA_DST.
// RTM_F_FIB_MATCH makes the answer the matching FIB entry (its prefix, gateway, protocol and
// onlink flag) rather than a cloned /32 result.
import { MsgType } from './codec';
import { decodeRoute, type NetlinkHandle } from './handle';
import { ip4Bytes } from '../ip/bytes';
import type { RouteState } from './types';

const AF_INET = 2;
const RTA_DST = 1;
const RTM_F_FIB_MATCH = 0x2000;

export function routeGetBody(dst: string): Buffer {
  const b = Buffer.alloc(12 + 8);
  b[0] = AF_INET;
  b[1] = 32; // rtm_dst_len
  b.writeUInt32LE(RTM_F_FIB_MATCH, 8);
  b.writeUInt16LE(8, 12); // rta_len
  b.writeUInt16LE(RTA_DST, 14);
  ip4Bytes(dst).copy(b, 16);
  return b;
}

/** The route the kernel picks for `dst`; throws NetlinkError (e.g. ENETUNREACH) when there is none. */
export function routeGet(h: NetlinkHandle, dst: string): RouteState | undefined {
  const msgs = h.sock.get({ type: MsgType.GETROUTE, flags: 0, body: routeGetBody(dst), target: `route to ${dst}` }, 'route get');
  for (const m of msgs) if (m.type === MsgType.NEWROUTE) return decodeRoute(m);
  return undefined;
}
