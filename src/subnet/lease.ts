// A host's subnet lease as stored in etcd, in flannel's exact key and JSON layout:
//
//   <prefix>/subnets/10.244.7.0-24 →
//   {"PublicIP":"192.168.50.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:.."}}
//
// Decoding never throws: etcd is shared, and one malformed or foreign entry (typed by hand,
// written by another flannel backend, left over from an older network config) must not stop
// the daemon from programming every other host. Each rejected entry comes back with a reason
// the caller can count and log.
//
// Only IPv4-only keys are understood; flannel's dual-stack form "10.244.7.0-24&fc00::-64" is
// reported as 'bad-key' (twill does not do IPv6).
import { jsonField, isJsonObject, type NetworkConfig } from '../config/network';
import { formatIp4, formatPrefix4, maskOf, prefixContains, prefixEquals, prefixesOverlap, tryParseIp4, type Ip4, type Prefix4 } from '../ip/ipv4';
import { tryParseMac } from '../ip/mac';

export interface Lease {
  subnet: Prefix4;
  publicIp: Ip4;
  vni: number;
  vtepMac: string;
}

export type LeaseSkipReason =
  | 'bad-key'
  | 'bad-json'
  | 'outside-network'
  | 'bad-public-ip'
  | 'bad-mac'
  | 'wrong-backend'
  | 'wrong-vni'
  | 'overlaps-own'
  | 'subnet-length';

export type DecodeResult = { ok: true; lease: Lease } | { ok: false; reason: LeaseSkipReason; detail: string };

export const BACKEND_TYPE = 'vxlan';

/** `<prefix>/subnets/` — every lease key starts with this. */
export function subnetsPrefix(prefix: string): string {
  return `${prefix}/subnets/`;
}

export function subnetKey(prefix: string, subnet: Prefix4): string {
  return `${subnetsPrefix(prefix)}${formatIp4(subnet.ip)}-${subnet.len}`;
}

const KEY_TAIL = /^((?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])){3})-(3[0-2]|[12][0-9]|[0-9])$/;

/**
 * The subnet a lease key names, or null when the key is not a lease key under `prefix`.
 * A key whose address has host bits set ("10.244.7.5-24") is not a subnet: null as well.
 */
export function parseSubnetKey(prefix: string, key: string): Prefix4 | null {
  const head = subnetsPrefix(prefix);
  if (!key.startsWith(head)) return null;
  const m = KEY_TAIL.exec(key.slice(head.length));
  if (!m) return null;
  const ip = tryParseIp4(m[1]);
  const len = Number(m[2]);
  if (ip === null || ((ip & maskOf(len)) >>> 0) !== ip) return null;
  return { ip, len };
}

export function encodeLeaseValue(lease: Lease): string {
  // Property order is the JSON order; it matches what flannel's Go structs marshal to.
  return JSON.stringify({
    PublicIP: formatIp4(lease.publicIp),
    PublicIPv6: null,
    BackendType: BACKEND_TYPE,
    BackendData: { VNI: lease.vni, VtepMAC: lease.vtepMac },
  });
}

function isUsablePublicIp(ip: Ip4): boolean {
  // 0.0.0.0, 255.255.255.255 and multicast cannot be a VXLAN tunnel endpoint.
  return ip !== 0 && ip !== 0xffffffff && (ip >>> 28) !== 0xe;
}

/**
 * The PublicIP of a lease value, or null if there is none. Used to recognise our own lease
 * (by underlay address, as flannel does) even when the rest of the value is stale.
 */
export function leaseValuePublicIp(value: string): Ip4 | null {
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    return null;
  }
  return isJsonObject(doc) ? tryParseIp4(jsonField(doc, 'PublicIP')) : null;
}

export function decodeLease(key: string, value: string, ctx: { prefix: string; config: NetworkConfig; own?: Lease }): DecodeResult {
  const subnet = parseSubnetKey(ctx.prefix, key);
  if (!subnet) return { ok: false, reason: 'bad-key', detail: `key ${JSON.stringify(key)} does not name a subnet under ${subnetsPrefix(ctx.prefix)}` };
  const sn = formatPrefix4(subnet);
  if (!prefixContains(ctx.config.network, subnet)) {
    return { ok: false, reason: 'outside-network', detail: `subnet ${sn} is outside network ${formatPrefix4(ctx.config.network)}` };
  }
  if (subnet.len !== ctx.config.subnetLen) {
    // A smaller piece of our subnet held by another host is the dangerous case (its more
    // specific route would steal our pods' traffic): name it for what it is.
    const own = ctx.own;
    if (own && prefixesOverlap(own.subnet, subnet) && leaseValuePublicIp(value) !== own.publicIp) {
      return { ok: false, reason: 'overlaps-own', detail: `subnet ${sn} overlaps ours (${formatPrefix4(own.subnet)}) and is not a /${ctx.config.subnetLen}` };
    }
    return { ok: false, reason: 'subnet-length', detail: `subnet ${sn} is not a /${ctx.config.subnetLen} (SubnetLen)` };
  }

  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    return { ok: false, reason: 'bad-json', detail: `value of ${sn} is not valid JSON` };
  }
  if (!isJsonObject(doc)) return { ok: false, reason: 'bad-json', detail: `value of ${sn} is not a JSON object` };

  const backendType = jsonField(doc, 'BackendType');
  if (backendType !== BACKEND_TYPE) {
    return { ok: false, reason: 'wrong-backend', detail: `subnet ${sn} has BackendType ${JSON.stringify(backendType ?? null)}, not "vxlan"` };
  }

  const publicIpRaw = jsonField(doc, 'PublicIP');
  const publicIp = tryParseIp4(publicIpRaw);
  if (publicIp === null || !isUsablePublicIp(publicIp)) {
    return { ok: false, reason: 'bad-public-ip', detail: `subnet ${sn} has unusable PublicIP ${JSON.stringify(publicIpRaw ?? null)}` };
  }

  const data = jsonField(doc, 'BackendData');
  const dataObj = isJsonObject(data) ? data : {};
  const macRaw = jsonField(dataObj, 'VtepMAC');
  const vtepMac = tryParseMac(macRaw);
  if (vtepMac === null) {
    return { ok: false, reason: 'bad-mac', detail: `subnet ${sn} has invalid BackendData.VtepMAC ${JSON.stringify(macRaw ?? null)}` };
  }
  // flannel writes the VNI it runs with; a host on another VNI cannot decapsulate our frames.
  const vni = jsonField(dataObj, 'VNI');
  if (vni !== ctx.config.backend.vni) {
    return { ok: false, reason: 'wrong-vni', detail: `subnet ${sn} has BackendData.VNI ${JSON.stringify(vni ?? null)}, network uses ${ctx.config.backend.vni}` };
  }

  const own = ctx.own;
  if (own && prefixesOverlap(own.subnet, subnet) && own.publicIp !== publicIp) {
    return { ok: false, reason: 'overlaps-own', detail: `subnet ${sn} is ours but names PublicIP ${formatIp4(publicIp)} (we are ${formatIp4(own.publicIp)})` };
  }

  return { ok: true, lease: { subnet, publicIp, vni: ctx.config.backend.vni, vtepMac } };
}

export function leaseEquals(a: Lease, b: Lease): boolean {
  return prefixEquals(a.subnet, b.subnet) && a.publicIp === b.publicIp && a.vni === b.vni && a.vtepMac === b.vtepMac;
}

/** For logs: `10.244.7.0/24 via 192.168.50.11 (0e:..)`. */
export function describeLease(l: Lease): string {
  return `${formatPrefix4(l.subnet)} via ${formatIp4(l.publicIp)} (vni ${l.vni}, ${l.vtepMac})`;
}
