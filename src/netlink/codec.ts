// With wg-codec.ts (its WireGuard structs), the only importer of the `netlink` npm package.
// We use its pure-JS encoders/decoders and never its socket layer (it aborts the process on ENOBUFS and has no errno on errors; see
// shared/KERNEL-NOTES.md). Deep imports keep its native addon from ever being loaded.
// Byte order: netlink headers use host order; this code assumes a little-endian host
// (x86_64, arm64), which is every platform twill targets.
/* eslint-disable @typescript-eslint/no-require-imports */
import type * as RtStructs from 'netlink/dist/rt/structs';
import type * as Ifla from 'netlink/dist/rt/ifla';
import type * as Structs from 'netlink/dist/structs';

const rt = require('netlink/dist/rt/structs') as typeof RtStructs;
const ifla = require('netlink/dist/rt/ifla') as typeof Ifla;
const structs = require('netlink/dist/structs') as typeof Structs;

export type RtLink = RtStructs.Link;
export type RtLinkAttrs = Ifla.LinkAttrs;
export type RtAddress = RtStructs.Address;
export type RtAddressAttrs = RtStructs.AddressAttrs;
export type RtRoute = RtStructs.Route;
export type RtRouteAttrs = RtStructs.RouteAttrs;
export type RtNeighbor = RtStructs.Neighbor;
export type RtNeighborAttrs = RtStructs.NeighborAttrs;
export type VxlanAttrs = Ifla.Vxlan;

export { Flags, HEADER_LENGTH, MsgType, decodeError, decodeMessages, encodeMessage, type DecodedError, type RawMessage } from './frame';

export function encodeBody(fill: (out: Structs.AttrStream) => void): Buffer {
  const out = new structs.AttrStream();
  fill(out);
  return Buffer.concat(out.bufs);
}

export function encodeLink(data: RtLink, attrs: RtLinkAttrs): Buffer {
  return encodeBody((out) => rt.formatLinkMessage({ kind: 'link', data, attrs }, out));
}
export function encodeAddress(data: RtAddress, attrs: RtAddressAttrs): Buffer {
  return encodeBody((out) => rt.formatAddressMessage({ kind: 'address', data, attrs }, out));
}
export function encodeRoute(data: RtRoute, attrs: RtRouteAttrs): Buffer {
  return encodeBody((out) => rt.formatRouteMessage({ kind: 'route', data, attrs }, out));
}
export function encodeNeighbor(data: RtNeighbor, attrs: RtNeighborAttrs): Buffer {
  return encodeBody((out) => rt.formatNeighborMessage({ kind: 'neighbor', data, attrs }, out));
}

/** IFLA_LINKINFO payload: kind plus its kind-specific data. */
export function encodeLinkInfo(kind: string, data?: Buffer): Buffer {
  return encodeBody((out) => out.emit(ifla.formatInfo({ kind, data })));
}
export function encodeVxlanData(v: VxlanAttrs): Buffer {
  return encodeBody((out) => out.emit(ifla.formatVxlan(v)));
}
/** VETH_INFO_PEER: an ifinfomsg plus the peer's own attributes (name, namespace fd, MTU...). */
export function encodeVethData(peer: RtLink, peerAttrs: RtLinkAttrs): Buffer {
  const peerBuf = encodeLink(peer, peerAttrs);
  return encodeBody((out) => out.emit(ifla.formatVethInfo({ peer: peerBuf })));
}

export function parseLink(body: Buffer) {
  return rt.parseLinkMessage(body);
}
export function parseLinkInfo(buf: Buffer) {
  return ifla.parseInfo(buf);
}
export function parseVxlan(buf: Buffer) {
  return ifla.parseVxlan(buf);
}
export function parseAddress(body: Buffer) {
  return rt.parseAddressMessage(body);
}
export function parseRoute(body: Buffer) {
  return rt.parseRouteMessage(body);
}
export function parseNeighbor(body: Buffer) {
  return rt.parseNeighborMessage(body);
}
