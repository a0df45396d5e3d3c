// The three per-peer entry kinds as the kernel shows them, with how to key, compare, read,
// write and delete each. Values include the device index so a recreated device (new ifindex)
// makes every entry pending again.
import type { NetlinkHandle } from '../netlink/handle';
import { req } from '../netlink/handle';
import type { Request } from '../netlink/socket';
import { NUD_PERMANENT, RT_TABLE_MAIN, type FdbState, type NeighState, type RouteState } from '../netlink/types';
import { TWILL_ROUTE_PROTOCOL, type DesiredState } from './model';

export interface RouteVal { dst: string; dstLen: number; gateway: string | undefined; oif: number | undefined; onlink: boolean; protocol: number }
export interface NeighVal { ip: string; mac: string | undefined; permanent: boolean; index: number }
export interface FdbVal { mac: string; dst: string | undefined; index: number }

export const routeEqual = (a: RouteVal, b: RouteVal): boolean =>
  a.gateway === b.gateway && a.oif === b.oif && a.onlink === b.onlink && a.protocol === b.protocol;
export const neighEqual = (a: NeighVal, b: NeighVal): boolean => a.mac === b.mac && a.permanent === b.permanent && a.index === b.index;
export const fdbEqual = (a: FdbVal, b: FdbVal): boolean => a.dst === b.dst && a.index === b.index;

export const routeKey = (r: { dst: string; dstLen: number }): string => `${r.dst}/${r.dstLen}`;

export function routeVal(r: RouteState): RouteVal {
  return { dst: r.dst, dstLen: r.dstLen, gateway: r.gateway, oif: r.oif, onlink: r.onlink, protocol: r.protocol };
}
export function neighVal(n: NeighState): NeighVal {
  return { ip: n.ip, mac: n.mac, permanent: (n.state & NUD_PERMANENT) !== 0, index: n.index };
}
export function fdbVal(f: FdbState): FdbVal {
  return { mac: f.mac, dst: f.dst, index: f.index };
}

export function desiredRoutes(d: DesiredState, devIndex: number): Map<string, RouteVal> {
  const out = new Map<string, RouteVal>();
  for (const [k, r] of d.routes) out.set(k, { dst: r.dst, dstLen: r.dstLen, gateway: r.gateway, oif: devIndex, onlink: true, protocol: TWILL_ROUTE_PROTOCOL });
  return out;
}
export function desiredNeighs(d: DesiredState, devIndex: number): Map<string, NeighVal> {
  const out = new Map<string, NeighVal>();
  for (const [k, n] of d.neighs) out.set(k, { ip: n.ip, mac: n.mac, permanent: true, index: devIndex });
  return out;
}
export function desiredFdb(d: DesiredState, devIndex: number): Map<string, FdbVal> {
  const out = new Map<string, FdbVal>();
  for (const [k, f] of d.fdb) out.set(k, { mac: f.mac, dst: f.dst, index: devIndex });
  return out;
}

/** Routes twill owns or wants: its protocol number, or a destination it must program. */
export function isOurRoute(r: RouteState, wanted: (key: string) => boolean): boolean {
  return r.table === RT_TABLE_MAIN && (r.protocol === TWILL_ROUTE_PROTOCOL || wanted(routeKey(r)));
}

export function readRoutes(h: NetlinkHandle, wanted: (key: string) => boolean): Map<string, RouteVal> {
  const out = new Map<string, RouteVal>();
  for (const r of h.listRoutes({ table: RT_TABLE_MAIN })) if (isOurRoute(r, wanted)) out.set(routeKey(r), routeVal(r));
  return out;
}
export function readNeighs(h: NetlinkHandle, devIndex: number): Map<string, NeighVal> {
  const out = new Map<string, NeighVal>();
  for (const n of h.listNeighs(devIndex)) out.set(n.ip, neighVal(n));
  return out;
}
export function readFdb(h: NetlinkHandle, devIndex: number): Map<string, FdbVal> {
  const out = new Map<string, FdbVal>();
  for (const f of h.listFdb(devIndex)) {
    // A MAC with several remotes (appended by someone) is never what we want: force a rewrite.
    const prev = out.get(f.mac);
    out.set(f.mac, prev ? { ...fdbVal(f), dst: `${prev.dst}+${f.dst}` } : fdbVal(f));
  }
  return out;
}

export function writeRoute(v: RouteVal): Request {
  return req.routeReplace({ dst: v.dst, dstLen: v.dstLen, gateway: v.gateway, oif: v.oif!, onlink: v.onlink, protocol: v.protocol });
}
export function deleteRoute(v: RouteVal): Request {
  return req.routeDelete({ dst: v.dst, dstLen: v.dstLen, gateway: v.gateway, oif: v.oif ?? 0, onlink: v.onlink, protocol: v.protocol });
}
export function writeNeigh(v: NeighVal): Request {
  return req.neighReplace(v.index, v.ip, v.mac!);
}
export function deleteNeigh(v: NeighVal): Request {
  return req.neighDelete(v.index, v.ip);
}
export function writeFdb(v: FdbVal): Request {
  return req.fdbReplace(v.index, v.mac, v.dst!);
}
export function deleteFdb(v: FdbVal): Request {
  // Without dst: removes every remote of this MAC (also a multi-remote entry).
  return req.fdbDelete(v.index, v.mac);
}
