// The kernel table kinds a backend may list, each a small spec the generic reconciler
// converges: how to bind a desired entry to the kernel's view, key, compare, list, write,
// delete, and which kernel events concern it. Values include the device index so a recreated
// device (new ifindex) makes every entry on it pending again.
//
// Order (`layer`): a route relies on its neighbour, a neighbour on its FDB entry. Deletes go
// top-down and writes bottom-up, and a table's deletes that something above relies on run after
// the writes above (src/dataplane/apply-order.ts): a peer switching from VXLAN's three entries to
// a direct route gets the route replaced in one step before its neighbour and FDB entry go.
import type { NetlinkEvent } from '../netlink/events';
import type { ActualSink } from './delta-tracker';
import type { NetlinkHandle } from '../netlink/handle';
import { req } from '../netlink/handle';
import type { Request } from '../netlink/socket';
import { NUD_PERMANENT, RT_TABLE_MAIN, RTN_UNICAST, RTN_UNREACHABLE, type FdbState, type NeighState, type RouteState } from '../netlink/types';
import { DEVICE, TWILL_ROUTE_PROTOCOL, type EntryKind, type EntryOf, type OnLink } from './model';

export interface RouteVal { dst: string; dstLen: number; gateway: string | undefined; oif: number | undefined; onlink: boolean; protocol: number; type: number }
export interface NeighVal { ip: string; mac: string | undefined; permanent: boolean; index: number }
export interface FdbVal { mac: string; dst: string | undefined; index: number }

export interface TableCtx {
  /** The backend device's ifindex, 0 when there is none (yet). */
  devIndex: number;
  /** Whether a key is desired (routes: a route to a wanted destination is ours whatever its protocol). */
  wanted(key: string): boolean;
}

/** One observed change: undefined value = gone; `deleted` = what the delete event named. */
export interface Observed<V> {
  key: string;
  value: V | undefined;
  deleted?: V;
}

export interface TableSpec<K extends EntryKind = EntryKind, V = unknown> {
  readonly kind: K;
  /** 0: nothing relies on it (routes); higher: entries below rely on. */
  readonly layer: number;
  /** Entries live on the backend's device: listed per device, nothing to do without one. */
  readonly onDevice: boolean;
  equal(a: V, b: V): boolean;
  bind(e: EntryOf[K], devIndex: number): V;
  /** A dump of the kernel's entries, each handed to `into` as it is read. */
  read(h: NetlinkHandle, ctx: TableCtx, into: ActualSink<V>): void;
  write(v: V): Request;
  remove(v: V): Request;
  observe(ev: NetlinkEvent, ctx: TableCtx): Observed<V> | undefined;
}

export const routeKey = (r: { dst: string; dstLen: number }): string => `${r.dst}/${r.dstLen}`;

function routeVal(r: RouteState): RouteVal {
  return { dst: r.dst, dstLen: r.dstLen, gateway: r.gateway, oif: r.oif, onlink: r.onlink, protocol: r.protocol, type: r.type };
}
function neighVal(n: NeighState): NeighVal {
  return { ip: n.ip, mac: n.mac, permanent: (n.state & NUD_PERMANENT) !== 0, index: n.index };
}
function fdbVal(f: FdbState): FdbVal {
  return { mac: f.mac, dst: f.dst, index: f.index };
}
const bindIndex = (on: OnLink, devIndex: number): number => (on === DEVICE ? devIndex : on);

/** Routes twill owns or wants: its protocol number, or a destination it must program. */
export function isOurRoute(r: RouteState, wanted: (key: string) => boolean): boolean {
  return r.table === RT_TABLE_MAIN && (r.protocol === TWILL_ROUTE_PROTOCOL || wanted(routeKey(r)));
}

export const routeTable: TableSpec<'route', RouteVal> = {
  kind: 'route',
  layer: 0,
  onDevice: false,
  equal: (a, b) => a.gateway === b.gateway && a.oif === b.oif && a.onlink === b.onlink && a.protocol === b.protocol && a.type === b.type,
  bind: (e, devIndex) => {
    const unreachable = e.type === 'unreachable';
    // The kernel reports an unreachable route without a device.
    return { dst: e.dst, dstLen: e.dstLen, gateway: e.gateway, oif: unreachable ? undefined : bindIndex(e.oif, devIndex), onlink: e.onlink, protocol: TWILL_ROUTE_PROTOCOL, type: unreachable ? RTN_UNREACHABLE : RTN_UNICAST };
  },
  read(h, ctx, into) {
    h.eachRoute(
      { table: RT_TABLE_MAIN },
      (r) => {
        if (isOurRoute(r, ctx.wanted)) into.see(routeKey(r), routeVal(r));
      },
      into.restart,
    );
  },
  write: (v) => req.routeReplace({ dst: v.dst, dstLen: v.dstLen, gateway: v.gateway, oif: v.oif ?? 0, onlink: v.onlink, protocol: v.protocol, type: v.type }),
  remove: (v) => req.routeDelete({ dst: v.dst, dstLen: v.dstLen, gateway: v.gateway, oif: v.oif ?? 0, onlink: v.onlink, protocol: v.protocol, type: v.type }),
  observe(ev, ctx) {
    if (ev.kind !== 'route' || !isOurRoute(ev.route, ctx.wanted)) return undefined;
    const v = routeVal(ev.route);
    return ev.action === 'del' ? { key: routeKey(v), value: undefined, deleted: v } : { key: routeKey(v), value: v };
  },
};

export const neighTable: TableSpec<'neigh', NeighVal> = {
  kind: 'neigh',
  layer: 1,
  onDevice: true,
  equal: (a, b) => a.mac === b.mac && a.permanent === b.permanent && a.index === b.index,
  bind: (e, devIndex) => ({ ip: e.ip, mac: e.mac, permanent: true, index: devIndex }),
  read(h, ctx, into) {
    h.eachNeigh(ctx.devIndex, (n) => into.see(n.ip, neighVal(n)), into.restart);
  },
  write: (v) => req.neighReplace(v.index, v.ip, v.mac!),
  remove: (v) => req.neighDelete(v.index, v.ip),
  observe(ev, ctx) {
    if (ev.kind !== 'neigh' || !ctx.devIndex || ev.neigh.index !== ctx.devIndex) return undefined;
    return { key: ev.neigh.ip, value: ev.action === 'del' ? undefined : neighVal(ev.neigh) };
  },
};

export const fdbTable: TableSpec<'fdb', FdbVal> = {
  kind: 'fdb',
  layer: 2,
  onDevice: true,
  equal: (a, b) => a.dst === b.dst && a.index === b.index,
  bind: (e, devIndex) => ({ mac: e.mac, dst: e.dst, index: devIndex }),
  read(h, ctx, into) {
    h.eachFdb(
      ctx.devIndex,
      (f) => {
        // A MAC with several remotes (appended by someone) is never what we want: force a rewrite.
        const prev = into.seen(f.mac);
        into.see(f.mac, prev ? { ...fdbVal(f), dst: `${prev.dst}+${f.dst}` } : fdbVal(f));
      },
      into.restart,
    );
  },
  write: (v) => req.fdbReplace(v.index, v.mac, v.dst!),
  // Without dst: removes every remote of this MAC (also a multi-remote entry).
  remove: (v) => req.fdbDelete(v.index, v.mac),
  observe(ev, ctx) {
    if (ev.kind !== 'fdb' || !ctx.devIndex || ev.fdb.index !== ctx.devIndex) return undefined;
    return { key: ev.fdb.mac, value: ev.action === 'del' ? undefined : fdbVal(ev.fdb) };
  },
};
