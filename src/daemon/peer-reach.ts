// How this host reaches its peers' PublicIPs, for backends that ask (host-gw, VXLAN
// DirectRouting): a snapshot of the main table, re-read when a link, an address or a route
// that is not twill's changes (a link going down drops its routes without a route event).
// Only a change in the routes that decide it (src/backends/reach.ts) counts as a change, so
// a pod's veth coming and going does not re-plan every peer.
import { reachability, reachSignature } from '../backends/reach';
import type { Reach } from '../backends/types';
import { TWILL_ROUTE_PROTOCOL } from '../dataplane/model';
import type { NetlinkEvent } from '../netlink/events';
import type { NetlinkHandle } from '../netlink/handle';
import { RT_TABLE_MAIN } from '../netlink/types';

export class PeerReach {
  private snapshot: { sig: string; lookup: (ip: number) => Reach } | undefined;

  constructor(private readonly h: NetlinkHandle) {}

  /** What decided the last snapshot (empty before the first): part of the peers' plan version. */
  get signature(): string {
    return this.snapshot?.sig ?? '';
  }

  get lookup(): ((ip: number) => Reach) | undefined {
    return this.snapshot?.lookup;
  }

  /** Reads the main table; true when reachability may have changed. Throws on netlink failure. */
  read(underlayIndex: number): boolean {
    const routes = this.h.listRoutes({ table: RT_TABLE_MAIN }).filter((r) => r.protocol !== TWILL_ROUTE_PROTOCOL);
    const sig = `${underlayIndex}|${reachSignature(routes, TWILL_ROUTE_PROTOCOL)}`;
    if (this.snapshot?.sig === sig) return false;
    this.snapshot = { sig, lookup: reachability(routes, underlayIndex, TWILL_ROUTE_PROTOCOL) };
    return true;
  }

  /** Whether a kernel event may change how peers are reached. */
  static concerns(e: NetlinkEvent): boolean {
    return e.kind === 'link' || e.kind === 'addr' || (e.kind === 'route' && e.route.protocol !== TWILL_ROUTE_PROTOCOL);
  }
}
