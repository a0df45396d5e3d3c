// Desired state as a pure function of (network config, own lease, peer leases, underlay facts).
// Per remote host the VXLAN backend programs exactly three entries, as flannel does:
//   route  <subnet>/<len> via <subnet>.0 dev twill.<VNI> onlink
//   neigh  <subnet>.0 lladdr <peer VTEP MAC> dev twill.<VNI> nud permanent
//   fdb    <peer VTEP MAC> dev twill.<VNI> dst <peer underlay IP> self permanent
// The route's gateway is the peer's <subnet>.0 (its VXLAN device address): the neighbour
// entry resolves it to the peer's VTEP MAC and the FDB entry maps that MAC to the peer's
// underlay IP, so the kernel never ARPs or floods across the overlay.
import type { NetworkConfig } from '../config/network';
import { formatIp4, prefixesOverlap, type Prefix4 } from '../ip/ipv4';
import type { Lease } from '../subnet/lease';
import { VXLAN_OVERHEAD, type DesiredState, type DeviceSpec, type FdbEntry, type NeighEntry, type RouteEntry } from './model';

export interface UnderlayFacts {
  index: number;
  ip: string;
  mtu: number;
}

export interface ComputeInput {
  config: NetworkConfig;
  /** Our lease, or the one we are about to write (its peers are known before it is held). */
  own: Lease;
  /** The device gets <subnet>.0 only once the lease is held in etcd. */
  ownHeld: boolean;
  peers: Iterable<Lease>;
  underlay: UnderlayFacts;
}

export interface PeerConflict {
  lease: Lease;
  reason: 'overlaps-own' | 'overlaps-peer' | 'duplicate-vtep-mac' | 'same-public-ip';
}

export interface ComputeResult {
  desired: DesiredState;
  /** Peers left out because programming them would break another entry. */
  conflicts: PeerConflict[];
}

export function deviceName(vni: number): string {
  return `twill.${vni}`;
}

/** A lease naming our subnet and PublicIP is our own (an earlier write of it), never a peer. */
export function isOwnLease(l: Lease, own: Lease): boolean {
  return l.subnet.ip === own.subnet.ip && l.subnet.len === own.subnet.len && l.publicIp === own.publicIp;
}

export function computeDesired(input: ComputeInput): ComputeResult {
  const { routes, neighs, fdb, conflicts } = computePeerEntries(input.own, input.peers);
  return { desired: { device: computeDevice(input), routes, neighs, fdb }, conflicts };
}

/** The device alone: it changes with the config, the underlay and whether our lease is held. */
export function computeDevice(input: Omit<ComputeInput, 'peers'>): DeviceSpec {
  const { config, own, underlay } = input;
  return {
    name: deviceName(config.backend.vni),
    vni: config.backend.vni,
    port: config.backend.port,
    local: underlay.ip,
    lowerIndex: underlay.index,
    mac: own.vtepMac,
    mtu: underlay.mtu - VXLAN_OVERHEAD,
    address: input.ownHeld ? formatIp4(own.subnet.ip) : undefined,
  };
}

export interface PeerEntries extends Omit<DesiredState, 'device'> {
  conflicts: PeerConflict[];
}

/** The three entries per peer: they change with the peer leases and our own lease only. */
export function computePeerEntries(own: Lease, input: Iterable<Lease>): PeerEntries {
  const routes = new Map<string, RouteEntry>();
  const neighs = new Map<string, NeighEntry>();
  const fdb = new Map<string, FdbEntry>();
  const conflicts: PeerConflict[] = [];
  // Prefixes either nest or are disjoint, and peers are visited in address order: a peer
  // overlaps an accepted one only if it overlaps the last accepted (O(n), not O(n²)).
  let lastAccepted: Prefix4 | undefined;

  // Deterministic order: the same inputs always give the same winner of a conflict.
  const peers = [...input].sort((a, b) => a.subnet.ip - b.subnet.ip || a.subnet.len - b.subnet.len || a.publicIp - b.publicIp);
  for (const p of peers) {
    if (isOwnLease(p, own)) continue;
    if (prefixesOverlap(p.subnet, own.subnet)) {
      conflicts.push({ lease: p, reason: 'overlaps-own' });
      continue;
    }
    if (p.publicIp === own.publicIp) {
      conflicts.push({ lease: p, reason: 'same-public-ip' });
      continue;
    }
    if (lastAccepted && prefixesOverlap(lastAccepted, p.subnet)) {
      conflicts.push({ lease: p, reason: 'overlaps-peer' });
      continue;
    }
    if (p.vtepMac === own.vtepMac || fdb.has(p.vtepMac)) {
      conflicts.push({ lease: p, reason: 'duplicate-vtep-mac' });
      continue;
    }
    lastAccepted = p.subnet;
    const dst = formatIp4(p.subnet.ip);
    routes.set(`${dst}/${p.subnet.len}`, { dst, dstLen: p.subnet.len, gateway: dst });
    neighs.set(dst, { ip: dst, mac: p.vtepMac });
    fdb.set(p.vtepMac, { mac: p.vtepMac, dst: formatIp4(p.publicIp) });
  }

  return { routes, neighs, fdb, conflicts };
}
