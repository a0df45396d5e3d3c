// The host-gw backend (flannel's {"Backend":{"Type":"host-gw"}}): per peer one route
//   <peer subnet> via <peer PublicIP> dev <underlay> proto 113
// No encapsulation: the pod MTU is the underlay's. It only works between hosts on one link:
// a peer whose PublicIP the kernel reaches through a gateway, or by another interface, is
// not programmed (its pod subnet is unknown to the router in between) but reported; it is
// programmed as soon as it is reachable (the daemon re-plans on underlay route and address
// changes). The lease carries no BackendData, as flannel writes it.
//
// Its device, twill-hostgw, carries no traffic and no entries: a bridge without ports that
// holds this host's <subnet>.0/32, the overlay address every backend gives its host, so peer
// probes (src/probe) run between hosts' <subnet>.0 over exactly the routes above — a peer's
// <subnet>.0 is in its subnet, reached via its PublicIP; ours is local, answered whatever
// interface the probe came in by. The kernel has no `dummy` link type here; a bridge without
// ports is the closest thing every kernel with a pod bridge has. A device rather than an
// address on `lo`: owned by name like the other backends' devices, so convergence, drift
// repair and the sweep when another backend becomes active apply unchanged (an address on
// `lo` would have to be told from an administrator's by some mark and removed by hand).
import { formatIp4 } from '../../ip/ipv4';
import type { BackendDataCodec, Lease } from '../../subnet/lease';
import type { Backend, PlannedEntry } from '../types';

export type HostGwData = Record<string, never>;

const NO_DATA: HostGwData = {};

export const HOST_GW_DEVICE = 'twill-hostgw';

export interface HostGwDeviceSpec {
  /** twill-hostgw */
  name: string;
  /** The underlay's: it carries nothing, and the pod MTU is the underlay's too. */
  mtu: number;
  /** <subnet>.0 (/32) once our lease is held; undefined: addresses left alone. */
  address: string | undefined;
}

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

export const hostGwBackend: Backend<HostGwData, HostGwDeviceSpec> = {
  type: 'host-gw',
  codec: hostGwCodec,
  tables: ['route'],
  ownData: () => NO_DATA,
  podMtu: (_config, underlayMtu) => underlayMtu,
  needsReach: () => true,
  ownsLink: (name) => name === HOST_GW_DEVICE,
  device: ({ own, ownHeld, underlay }) => ({ name: HOST_GW_DEVICE, mtu: underlay.mtu, address: ownHeld ? formatIp4(own.subnet.ip) : undefined }),
  planPeer(ctx, p) {
    const r = ctx.reach(p.publicIp);
    if (!r.direct) return { ok: false, reason: 'not-directly-reachable', detail: r.why };
    return { ok: true, path: 'direct', entries: [directRoute(p, ctx.underlay.index)] };
  },
};
