// IPv4 addresses and prefixes as plain numbers.
//
// An address is a uint32 held in a JS number. JS bitwise operators work on *signed* 32-bit
// integers, so every result that can have the top bit set goes through `>>> 0` to come back
// unsigned, and `x << 32` is avoided (JS shifts modulo 32, so it is `x`, not 0).
//
// Parsing is deliberately strict (exactly four decimal octets, no leading zeros, no spaces):
// inet_aton-style forms such as "10.1", "0x0a.0.0.1" or "010.0.0.1" (octal to some parsers)
// are rejected rather than guessed at, because a mis-parsed address in etcd would route pod
// traffic to the wrong host.

import { TwillError } from '../base/twill-error';

export type Ip4 = number;

export interface Prefix4 {
  /** Always the network address (host bits zero). */
  readonly ip: Ip4;
  readonly len: number;
}

export class IpError extends TwillError<'ERR_INVALID_IP' | 'ERR_INVALID_MAC'> {
  constructor(code: 'ERR_INVALID_IP' | 'ERR_INVALID_MAC', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'IpError';
  }
}

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const DOTTED_QUAD = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const PREFIX_LEN = /^(3[0-2]|[12][0-9]|[0-9])$/;

export function parseIp4(s: string): Ip4 {
  const m = typeof s === 'string' ? DOTTED_QUAD.exec(s) : null;
  if (!m) throw new IpError('ERR_INVALID_IP', `invalid IPv4 address ${JSON.stringify(s)} (expected a.b.c.d)`);
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
}

/** Like parseIp4 but returns null instead of throwing (for decoding untrusted data). */
export function tryParseIp4(s: unknown): Ip4 | null {
  if (typeof s !== 'string') return null;
  try {
    return parseIp4(s);
  } catch {
    return null;
  }
}

export function formatIp4(n: Ip4): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function maskOf(len: number): number {
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new IpError('ERR_INVALID_IP', `invalid prefix length ${len}`);
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** A prefix from an address and length, with host bits cleared. */
export function prefix4(ip: Ip4, len: number): Prefix4 {
  return { ip: (ip & maskOf(len)) >>> 0, len };
}

/** "10.244.0.0/16" → prefix; host bits are masked off ("10.244.1.7/16" → 10.244.0.0/16). */
export function parsePrefix4(s: string): Prefix4 {
  if (typeof s !== 'string') throw new IpError('ERR_INVALID_IP', `invalid IPv4 prefix ${String(s)}`);
  const slash = s.indexOf('/');
  if (slash < 0 || !PREFIX_LEN.test(s.slice(slash + 1))) {
    throw new IpError('ERR_INVALID_IP', `invalid IPv4 prefix ${JSON.stringify(s)} (expected a.b.c.d/len)`);
  }
  let ip: Ip4;
  try {
    ip = parseIp4(s.slice(0, slash));
  } catch (err) {
    throw new IpError('ERR_INVALID_IP', `invalid IPv4 prefix ${JSON.stringify(s)} (bad address)`, { cause: err });
  }
  return prefix4(ip, Number(s.slice(slash + 1)));
}

/**
 * Orders subnet texts as numbers: "10.2.0.0/24" before "10.10.0.0/24", by address then length.
 * Text that is not a.b.c.d/len comes first (a malformed row is what to look at), by code units.
 * For sorting 10,000s of rows:
 * localeCompare with { numeric: true } made an ICU collator per call (~10 µs, and ICU's data
 * paged in), which made a 5,000-entry sort take half a second.
 */
export function compareSubnetText(a: string, b: string): number {
  const ra = subnetRank(a);
  const rb = subnetRank(b);
  if (ra >= 0 && rb >= 0) return ra - rb;
  if (ra >= 0 || rb >= 0) return ra >= 0 ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** a.b.c.d/len as address × 64 + len, or -1. Lenient (leading zeros): it only orders. */
function subnetRank(s: string): number {
  let ip = 0;
  let parts = 0;
  let cur = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      cur = (cur < 0 ? 0 : cur * 10) + (c - 48);
      if (cur > 255) return -1;
    } else if (cur >= 0 && ((c === 46 && parts < 3) || (c === 47 && parts === 3))) {
      ip = ip * 256 + cur;
      parts++;
      cur = -1;
    } else return -1;
  }
  return parts === 4 && cur >= 0 && cur <= 32 ? ip * 64 + cur : -1;
}

export function formatPrefix4(p: Prefix4): string {
  return `${formatIp4(p.ip)}/${p.len}`;
}

export function prefixEquals(a: Prefix4, b: Prefix4): boolean {
  return a.ip === b.ip && a.len === b.len;
}

export function ipInPrefix(ip: Ip4, p: Prefix4): boolean {
  return ((ip & maskOf(p.len)) >>> 0) === p.ip;
}

/** True when every address of `inner` is inside `outer`. */
export function prefixContains(outer: Prefix4, inner: Prefix4): boolean {
  return outer.len <= inner.len && ipInPrefix(inner.ip, outer);
}

export function prefixesOverlap(a: Prefix4, b: Prefix4): boolean {
  const m = maskOf(Math.min(a.len, b.len));
  return ((a.ip & m) >>> 0) === ((b.ip & m) >>> 0);
}

/** Number of addresses (2^(32-len)); up to 2^32, still exact in a double. */
export function prefixSize(p: Prefix4): number {
  return 2 ** (32 - p.len);
}

export function firstHost(p: Prefix4): Ip4 {
  return (p.ip + 1) >>> 0;
}

export function broadcast(p: Prefix4): Ip4 {
  return (p.ip | ~maskOf(p.len)) >>> 0;
}

export function ip4ToBuffer(ip: Ip4): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(ip >>> 0, 0);
  return b;
}

export function ip4FromBuffer(b: Uint8Array): Ip4 {
  if (b.length !== 4) throw new IpError('ERR_INVALID_IP', `IPv4 address must be 4 bytes, got ${b.length}`);
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}
