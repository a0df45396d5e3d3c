// A host's subnet lease as stored in etcd, in flannel's exact key and JSON layout:
//
//   <prefix>/subnets/10.244.7.0-24 →
//   {"PublicIP":"192.168.50.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:.."}}
//   {"PublicIP":"192.168.50.12","PublicIPv6":null,"BackendType":"host-gw"}
//
// The lease is generic: subnet, PublicIP, PublicIPv6, BackendType and BackendData. What
// BackendData holds, and whether it is valid, only the backend knows: it hands a codec in
// (src/backends/<name>/). A lease of another BackendType than the active one is skipped.
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

export interface Lease<D = unknown> {
  subnet: Prefix4;
  publicIp: Ip4;
  /** Always null: twill does not do IPv6 (yet); written as flannel writes it. */
  publicIpv6: null;
  backendType: string;
  backendData: D;
}

/** A backend's BackendData: decoded and validated, encoded in flannel's field order. */
export interface BackendDataCodec<D = unknown> {
  readonly type: string;
  /** `raw` is BackendData as parsed JSON (undefined when absent). */
  decode(raw: unknown, config: NetworkConfig): { ok: true; data: D } | { ok: false; reason: LeaseSkipReason; detail: string };
  /** Hot path: BackendData's exact text as twill and flannel write it (undefined when absent), or null for the general path. */
  decodeCanonical(text: string | undefined, config: NetworkConfig): D | null;
  /** undefined: BackendData omitted (flannel's omitempty). */
  encode(d: D): unknown;
  equals(a: D, b: D): boolean;
  /** For logs. */
  describe(d: D): string;
}

export type LeaseSkipReason =
  | 'bad-key'
  | 'bad-json'
  | 'outside-network'
  | 'bad-public-ip'
  | 'wrong-backend'
  | 'overlaps-own'
  | 'subnet-length'
  /** A backend's own reasons ('bad-mac', 'wrong-vni', ...). */
  | (string & {});

export type DecodeResult<D = unknown> = { ok: true; lease: Lease<D> } | { ok: false; reason: LeaseSkipReason; detail: string };

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

export function encodeLeaseValue<D>(lease: Lease<D>, codec: BackendDataCodec<D>): string {
  // Property order is the JSON order; it matches what flannel's Go structs marshal to
  // (BackendData omitted when empty, as flannel's omitempty does).
  const data = codec.encode(lease.backendData);
  return JSON.stringify({
    PublicIP: formatIp4(lease.publicIp),
    PublicIPv6: null,
    BackendType: lease.backendType,
    ...(data === undefined ? {} : { BackendData: data }),
  });
}

/**
 * The exact text flannel and twill write (Go's json.Marshal of flannel's lease attributes).
 * Hot path: a cold start decodes 10,000 of these. A value of this shape carries no escapes,
 * duplicate or case-folded keys, so its fields are what JSON.parse + jsonField would find;
 * every other value takes the general path. BackendData's text goes to the backend's codec.
 */
const CANONICAL_VALUE = new RegExp(`^\\{"PublicIP":"${QUAD}","PublicIPv6":null,"BackendType":"([a-z0-9-]{1,32})"(?:,"BackendData":(.*))?\\}$`);

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

export interface DecodeContext<D> {
  prefix: string;
  config: NetworkConfig;
  own?: Lease<D>;
  /** The active backend's: a lease of another BackendType is skipped ('wrong-backend'). */
  codec: BackendDataCodec<D>;
}

export function decodeLease<D>(key: string, value: string, ctx: DecodeContext<D>): DecodeResult<D> {
  const subnet = parseSubnetKey(ctx.prefix, key);
  if (!subnet) return { ok: false, reason: 'bad-key', detail: `key ${JSON.stringify(key)} does not name a subnet under ${subnetsPrefix(ctx.prefix)}` };
  if (!prefixContains(ctx.config.network, subnet)) {
    return { ok: false, reason: 'outside-network', detail: `subnet ${formatPrefix4(subnet)} is outside network ${formatPrefix4(ctx.config.network)}` };
  }
  const sn = formatPrefix4(subnet);
  if (subnet.len !== ctx.config.subnetLen) {
    // A smaller piece of our subnet held by another host is the dangerous case (its more
    // specific route would steal our pods' traffic): name it for what it is.
    const own = ctx.own;
    if (own && prefixesOverlap(own.subnet, subnet) && leaseValuePublicIp(value) !== own.publicIp) {
      return { ok: false, reason: 'overlaps-own', detail: `subnet ${sn} overlaps ours (${formatPrefix4(own.subnet)}) and is not a /${ctx.config.subnetLen}` };
    }
    return { ok: false, reason: 'subnet-length', detail: `subnet ${sn} is not a /${ctx.config.subnetLen} (SubnetLen)` };
  }

  const { codec } = ctx;
  let publicIpRaw: unknown;
  let publicIp: Ip4 | null = null;
  let data: D | null = null;
  let backendType: unknown;
  let dataRaw: unknown;
  const m = CANONICAL_VALUE.exec(value);
  if (m) {
    publicIp = quadAt(m, 1);
    backendType = m[5];
    if (backendType === codec.type) data = codec.decodeCanonical(m[6], ctx.config);
  }
  if (data === null) {
    let doc: unknown;
    try {
      doc = JSON.parse(value);
    } catch {
      return { ok: false, reason: 'bad-json', detail: `value of ${sn} is not valid JSON` };
    }
    if (!isJsonObject(doc)) return { ok: false, reason: 'bad-json', detail: `value of ${sn} is not a JSON object` };
    backendType = jsonField(doc, 'BackendType');
    publicIpRaw = jsonField(doc, 'PublicIP');
    publicIp = tryParseIp4(publicIpRaw);
    dataRaw = jsonField(doc, 'BackendData');
  }
  if (backendType !== codec.type) {
    return { ok: false, reason: 'wrong-backend', detail: `subnet ${sn} has BackendType ${JSON.stringify(backendType ?? null)}, not ${JSON.stringify(codec.type)}` };
  }
  if (publicIp === null || !isUsablePublicIp(publicIp)) {
    return { ok: false, reason: 'bad-public-ip', detail: `subnet ${sn} has unusable PublicIP ${JSON.stringify(publicIp !== null ? formatIp4(publicIp) : (publicIpRaw ?? null))}` };
  }
  if (data === null) {
    const res = codec.decode(dataRaw, ctx.config);
    if (!res.ok) return { ok: false, reason: res.reason, detail: `subnet ${sn}: ${res.detail}` };
    data = res.data;
  }

  const own = ctx.own;
  if (own && prefixesOverlap(own.subnet, subnet) && own.publicIp !== publicIp) {
    return { ok: false, reason: 'overlaps-own', detail: `subnet ${sn} is ours but names PublicIP ${formatIp4(publicIp)} (we are ${formatIp4(own.publicIp)})` };
  }

  return { ok: true, lease: { subnet, publicIp, publicIpv6: null, backendType: codec.type, backendData: data } };
}

export function leaseEquals<D>(a: Lease<D>, b: Lease<D>, codec: BackendDataCodec<D>): boolean {
  return prefixEquals(a.subnet, b.subnet) && a.publicIp === b.publicIp && a.backendType === b.backendType && codec.equals(a.backendData, b.backendData);
}

/** For logs: `10.244.7.0/24 via 192.168.50.11 (vxlan vni 1, 0e:..)`. */
export function describeLease<D>(l: Lease<D>, codec: BackendDataCodec<D>): string {
  const data = codec.describe(l.backendData);
  return `${formatPrefix4(l.subnet)} via ${formatIp4(l.publicIp)} (${l.backendType}${data ? ` ${data}` : ''})`;
}
