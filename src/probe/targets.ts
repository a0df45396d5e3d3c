// Which address a peer is probed at. Pure.
//
// Probes go from our overlay address to the peer's: the first address of each subnet
// (<subnet>.0), which twilld puts on its overlay device, so a probe takes the route to the
// peer's subnet and every entry the backend programmed under it, whatever the backend. A
// backend without an overlay device (host-gw) must still give the host its <subnet>.0 (e.g.
// on the pod bridge) for the peers' probes to reach its responder. Replies may come back from
// the peer's PublicIP instead (a host-gw peer answers over its underlay route).
import { formatPrefix4, type Ip4, type Prefix4 } from '../ip/ipv4';
import type { ProbeTarget } from './prober';

export interface PeerAddresses {
  subnet: Prefix4;
  publicIp: Ip4;
}

export function overlayAddress(subnet: Prefix4): Ip4 {
  return subnet.ip;
}

export function probeTargets(peers: Iterable<PeerAddresses>): ProbeTarget[] {
  const out: ProbeTarget[] = [];
  for (const p of peers) out.push({ key: formatPrefix4(p.subnet), overlay: overlayAddress(p.subnet), publicIp: p.publicIp });
  return out;
}
