// The host-gw backend (flannel's {"Backend":{"Type":"host-gw"}}): per peer one route
//   <peer subnet> via <peer PublicIP> dev <underlay> proto 113
// No device, no encapsulation: the pod MTU is the underlay's. It only works between hosts on
// one link: a peer whose PublicIP the kernel reaches through a gateway, or by another
// interface, is not programmed (its pod subnet is unknown to the router in between) but
// reported; it is programmed as soon as it is reachable (the daemon re-plans on underlay
// route and address changes). The lease carries no BackendData, as flannel writes it.
import { formatIp4 } from '../../ip/ipv4';
import type { BackendDataCodec, Lease } from '../../subnet/lease';
import type { Backend, PlannedEntry } from '../types';

export type HostGwData = Record<string, never>;

const NO_DATA: HostGwData = {};

export const hostGwCodec: BackendDataCodec<HostGwData> = {
  type: 'host-gw',
  // flannel omits BackendData; anything there is ignored, as flannel ignores it.
  decode: () => ({ ok: true, data: NO_DATA }),
  decodeCanonical: () => NO_DATA,
  encode: () => undefined,
  equals: () => true,
  describe: () => '',
};

/** The route to a peer's subnet via its PublicIP on the underlay (host-gw, and VXLAN DirectRouting). */
export function directRoute(p: Lease<unknown>, underlayIndex: number): PlannedEntry {
  const dst = formatIp4(p.subnet.ip);
  return { kind: 'route', key: `${dst}/${p.subnet.len}`, entry: { dst, dstLen: p.subnet.len, gateway: formatIp4(p.publicIp), oif: underlayIndex, onlink: false } };
}

export const hostGwBackend: Backend<HostGwData, never> = {
  type: 'host-gw',
  codec: hostGwCodec,
  tables: ['route'],
  ownData: () => NO_DATA,
  podMtu: (_config, underlayMtu) => underlayMtu,
  needsReach: () => true,
  ownsLink: () => false,
  device: () => undefined,
  planPeer(ctx, p) {
    const r = ctx.reach(p.publicIp);
    if (!r.direct) return { ok: false, reason: 'not-directly-reachable', detail: r.why };
    return { ok: true, path: 'direct', entries: [directRoute(p, ctx.underlay.index)] };
  },
};
