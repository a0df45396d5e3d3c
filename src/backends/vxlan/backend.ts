// The VXLAN backend, pure half. Per remote host it programs exactly three entries, as flannel does:
//   route  <subnet>/<len> via <subnet>.0 dev twill.<VNI> onlink
//   neigh  <subnet>.0 lladdr <peer VTEP MAC> dev twill.<VNI> nud permanent
//   fdb    <peer VTEP MAC> dev twill.<VNI> dst <peer underlay IP> self permanent
// The route's gateway is the peer's <subnet>.0 (its VXLAN device address): the neighbour
// entry resolves it to the peer's VTEP MAC and the FDB entry maps that MAC to the peer's
// underlay IP, so the kernel never ARPs or floods across the overlay.
//
// DirectRouting (flannel's option; Calico calls it CrossSubnet): a peer on the underlay's own
// link gets host-gw's single route instead (src/backends/host-gw), under the same route key,
// so switching path is one route replace (see src/dataplane/apply-order.ts). The pod MTU stays
// VXLAN's: some peers are still encapsulated.
import type { VxlanConfig } from '../../config/network';
import { DEVICE } from '../../dataplane/model';
import { formatIp4 } from '../../ip/ipv4';
import { parseMac } from '../../ip/mac';
import { directRoute } from '../host-gw/backend';
import type { Backend, PeerPlan } from '../types';
import { vxlanCodec, type VxlanData } from './codec';

/** VXLAN over IPv4: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;

export interface VxlanDeviceSpec {
  /** twill.<VNI> */
  name: string;
  vni: number;
  port: number;
  /** Underlay (local) IP the VXLAN socket binds to. */
  local: string;
  lowerIndex: number;
  mac: string;
  /** Underlay MTU − 50. */
  mtu: number;
  /**
   * <subnet>.0, configured as /32. Undefined while our lease is not yet held (a cold start
   * programs peers meanwhile): the device's addresses are then left as they are.
   */
  address: string | undefined;
}

export function deviceName(vni: number): string {
  return `twill.${vni}`;
}

const DEVICE_NAME = /^twill\.[0-9]{1,8}$/;

function vxlanConfig(c: { backend: { type: string } }): VxlanConfig {
  if (c.backend.type !== 'vxlan') throw new RangeError(`vxlan backend used with a ${c.backend.type} network config`);
  return c.backend as VxlanConfig;
}

export const vxlanBackend: Backend<VxlanData, VxlanDeviceSpec> = {
  type: 'vxlan',
  codec: vxlanCodec,
  tables: ['route', 'neigh', 'fdb'],
  ownData: ({ config, vtepMac }) => ({ vni: vxlanConfig(config).vni, vtepMac: parseMac(vtepMac) }),
  podMtu: (_config, underlayMtu) => underlayMtu - VXLAN_OVERHEAD,
  needsReach: (config) => vxlanConfig(config).directRouting,
  ownsLink: (name) => DEVICE_NAME.test(name),
  // The kernel's VXLAN device decapsulates from any source (`nolearning` only stops it
  // learning). The userspace driver owns the port's socket itself and drops datagrams from
  // unknown sources there (twill_userspace_drops_total{reason="unknown-peer"}): no filter.
  sourceFilterPort: (config, mode) => (mode === 'kernel' ? vxlanConfig(config).port : undefined),
  device({ config, own, ownHeld, underlay }) {
    const b = vxlanConfig(config);
    return {
      name: deviceName(b.vni),
      vni: b.vni,
      port: b.port,
      local: underlay.ip,
      lowerIndex: underlay.index,
      mac: own.backendData.vtepMac,
      mtu: underlay.mtu - VXLAN_OVERHEAD,
      address: ownHeld ? formatIp4(own.subnet.ip) : undefined,
    };
  },
  planPeer(ctx, p): PeerPlan {
    const mac = p.backendData.vtepMac;
    if (mac === ctx.own.backendData.vtepMac) return { ok: false, reason: 'duplicate-vtep-mac', detail: `its VTEP MAC ${mac} is ours` };
    if (vxlanConfig(ctx.config).directRouting && ctx.reach(p.publicIp).direct) {
      return { ok: true, path: 'direct', entries: [directRoute(p, ctx.underlay.index)] };
    }
    const dst = formatIp4(p.subnet.ip);
    return {
      ok: true,
      path: 'vxlan',
      entries: [
        { kind: 'route', key: `${dst}/${p.subnet.len}`, entry: { dst, dstLen: p.subnet.len, gateway: dst, oif: DEVICE, onlink: true } },
        { kind: 'neigh', key: dst, entry: { ip: dst, mac } },
        { kind: 'fdb', key: mac, entry: { mac, dst: formatIp4(p.publicIp) }, collision: 'duplicate-vtep-mac' },
      ],
    };
  },
};
