// Which address a peer is probed at. Pure.
//
// Probes go from our overlay address to the peer's: the first address of each subnet
// (<subnet>.0), which every backend puts on its device as a /32 (vxlan's twill.<VNI>,
// wireguard's twill-wg, host-gw's port-less bridge twill-hostgw), so a probe takes the route
// to the peer's subnet and every entry the backend programmed under it, whatever the backend.
// Replies may come back from the peer's PublicIP instead: a responder bound to any address
// answers from the source its route back picks, and host-gw's route (via our PublicIP, on the
// underlay) picks the peer's underlay address.
import { formatPrefix4, type Ip4, type Prefix4 } from '../ip/ipv4';
import type { ProbeTarget } from './peer';

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
