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

// One octet of a dotted quad, as src/ip/ipv4 accepts it (no leading zeros).
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const QUAD = `${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}`;
const KEY_TAIL = new RegExp(`^${QUAD}-(3[0-2]|[12][0-9]|[0-9])$`);

/** The address in captures i..i+3 of a QUAD match (already range-checked by the pattern). */
function quadAt(m: RegExpExecArray, i: number): Ip4 {
  return ((Number(m[i]) << 24) | (Number(m[i + 1]) << 16) | (Number(m[i + 2]) << 8) | Number(m[i + 3])) >>> 0;
}

/**
 * The subnet a lease key names, or null when the key is not a lease key under `prefix`.
 * A key whose address has host bits set ("10.244.7.5-24") is not a subnet: null as well.
 */
export function parseSubnetKey(prefix: string, key: string): Prefix4 | null {
  const head = subnetsPrefix(prefix);
  if (!key.startsWith(head)) return null;
  const m = KEY_TAIL.exec(key.slice(head.length));
  if (!m) return null;
  const ip = quadAt(m, 1);
  const len = Number(m[5]);
  if (((ip & maskOf(len)) >>> 0) !== ip) return null;
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

/**
 * The exact text flannel and twill write (Go's json.Marshal of flannel's lease attributes).
 * Hot path: a cold start decodes 10,000 of these. A value of this shape carries no escapes,
 * duplicate or case-folded keys, so its fields are what JSON.parse + jsonField would find;
 * every other value takes the general path. VNI is a valid JSON number (no leading zeros).
 */
const CANONICAL_VALUE = new RegExp(
  `^\\{"PublicIP":"${QUAD}","PublicIPv6":null,"BackendType":"vxlan","BackendData":\\{"VNI":(0|[1-9][0-9]{0,9}),"VtepMAC":"([0-9a-f]{2}(?::[0-9a-f]{2}){5})"\\}\\}$`,
);

function isUsablePublicIp(ip: Ip4): boolean {
  // 0.0.0.0, 255.255.255.255 and multicast cannot be a VXLAN tunnel endpoint.
  return ip !== 0 && ip !== 0xffffffff && (ip >>> 28) !== 0xe;
}

/**
 * The PublicIP of a lease value, or null if there is none. Used to recognise our own lease
 * (by underlay address, as flannel does) even when the rest of the value is stale.
 */
export function leaseValuePublicIp(value: string): Ip4 | null {
  const m = CANONICAL_VALUE.exec(value);
  if (m) return quadAt(m, 1);
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
  if (!prefixContains(ctx.config.network, subnet)) {
    return { ok: false, reason: 'outside-network', detail: `subnet ${formatPrefix4(subnet)} is outside network ${formatPrefix4(ctx.config.network)}` };
  }
  if (subnet.len !== ctx.config.subnetLen) {
    // A smaller piece of our subnet held by another host is the dangerous case (its more
    // specific route would steal our pods' traffic): name it for what it is.
    const own = ctx.own;
    const sn = formatPrefix4(subnet);
    if (own && prefixesOverlap(own.subnet, subnet) && leaseValuePublicIp(value) !== own.publicIp) {
      return { ok: false, reason: 'overlaps-own', detail: `subnet ${sn} overlaps ours (${formatPrefix4(own.subnet)}) and is not a /${ctx.config.subnetLen}` };
    }
    return { ok: false, reason: 'subnet-length', detail: `subnet ${sn} is not a /${ctx.config.subnetLen} (SubnetLen)` };
  }

  let publicIpRaw: unknown;
  let publicIp: Ip4 | null = null;
  let macRaw: unknown;
  let vtepMac: string | null = null;
  let vni: unknown;
  const m = CANONICAL_VALUE.exec(value);
  if (m) {
    publicIp = quadAt(m, 1);
    vni = Number(m[5]);
    const mac = m[6]!;
    macRaw = mac;
    // Already lowercase aa:bb:cc:dd:ee:ff: accepted here only when plainly unicast and not all
    // zeros; anything else is left to tryParseMac (the one authority) below.
    if ((parseInt(mac[1]!, 16) & 1) === 0 && mac !== '00:00:00:00:00:00') vtepMac = mac;
  } else {
    let doc: unknown;
    try {
      doc = JSON.parse(value);
    } catch {
      return { ok: false, reason: 'bad-json', detail: `value of ${formatPrefix4(subnet)} is not valid JSON` };
    }
    if (!isJsonObject(doc)) return { ok: false, reason: 'bad-json', detail: `value of ${formatPrefix4(subnet)} is not a JSON object` };

    const backendType = jsonField(doc, 'BackendType');
    if (backendType !== BACKEND_TYPE) {
      return { ok: false, reason: 'wrong-backend', detail: `subnet ${formatPrefix4(subnet)} has BackendType ${JSON.stringify(backendType ?? null)}, not "vxlan"` };
    }
    publicIpRaw = jsonField(doc, 'PublicIP');
    publicIp = tryParseIp4(publicIpRaw);
    const data = jsonField(doc, 'BackendData');
    const dataObj = isJsonObject(data) ? data : {};
    macRaw = jsonField(dataObj, 'VtepMAC');
    vni = jsonField(dataObj, 'VNI');
  }

  if (publicIp === null || !isUsablePublicIp(publicIp)) {
    return { ok: false, reason: 'bad-public-ip', detail: `subnet ${formatPrefix4(subnet)} has unusable PublicIP ${JSON.stringify(publicIp !== null ? formatIp4(publicIp) : (publicIpRaw ?? null))}` };
  }

  vtepMac ??= tryParseMac(macRaw);
  if (vtepMac === null) {
    return { ok: false, reason: 'bad-mac', detail: `subnet ${formatPrefix4(subnet)} has invalid BackendData.VtepMAC ${JSON.stringify(macRaw ?? null)}` };
  }
  // flannel writes the VNI it runs with; a host on another VNI cannot decapsulate our frames.
  if (vni !== ctx.config.backend.vni) {
    return { ok: false, reason: 'wrong-vni', detail: `subnet ${formatPrefix4(subnet)} has BackendData.VNI ${JSON.stringify(vni ?? null)}, network uses ${ctx.config.backend.vni}` };
  }

  const own = ctx.own;
  if (own && prefixesOverlap(own.subnet, subnet) && own.publicIp !== publicIp) {
    return { ok: false, reason: 'overlaps-own', detail: `subnet ${formatPrefix4(subnet)} is ours but names PublicIP ${formatIp4(publicIp)} (we are ${formatIp4(own.publicIp)})` };
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
