// IPv4 addresses and MACs in their text forms ("10.244.7.0", "0e:1f:aa:00:12:34") to and from
// wire bytes: the one set every codec uses (the hand-written netlink codecs, the CNI plugin's
// rtnetlink codec, the netlink handle, the userspace forwarder's table).
//
// These are the hot paths of a 10,000-peer cold start (30,000 messages encoded, as many
// decoded), so they parse by character code and format from a table, allocate only what they
// return, and apply no policy: a MAC here may be multicast or zero (validation of what a lease
// may hold is parseMac's job, in mac.ts). Malformed text is a programming error of the caller
// (leases are validated long before they are encoded) and throws TypeError, as Node's own
// argument checks do.
// Accepted text: four dot-separated decimal octets of 1-3 digits each, <= 255 (a leading zero
// is read as decimal, never octal); six colon-separated pairs of hex digits, either case.

const DOT = 46;
const COLON = 58;

/** Writes the 4 bytes of `ip` at `off`. */
export function writeIp4(buf: Uint8Array, off: number, ip: string): void {
  let part = 0;
  let val = 0;
  let digits = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || val > 255 || part > 3) throw new TypeError(`not an IPv4 address: ${ip}`);
      buf[off + part] = val;
      part++;
      val = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      val = val * 10 + (c - 48);
      digits++;
    } else {
      throw new TypeError(`not an IPv4 address: ${ip}`);
    }
  }
  if (part !== 4) throw new TypeError(`not an IPv4 address: ${ip}`);
}

/** The dotted quad of the 4 bytes at `off`. */
export function readIp4(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Writes the 6 bytes of `mac` at `off`. */
export function writeMac(buf: Uint8Array, off: number, mac: string): void {
  if (mac.length !== 17) throw new TypeError(`not a MAC address: ${mac}`);
  for (let i = 0; i < 6; i++) {
    const hi = hexVal(mac.charCodeAt(i * 3));
    const lo = hexVal(mac.charCodeAt(i * 3 + 1));
    if (hi < 0 || lo < 0 || (i < 5 && mac.charCodeAt(i * 3 + 2) !== COLON)) throw new TypeError(`not a MAC address: ${mac}`);
    buf[off + i] = hi * 16 + lo;
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lowercase colon form of the 6 bytes at `off`. */
export function readMac(buf: ArrayLike<number>, off: number): string {
  return `${HEX[buf[off]!]}:${HEX[buf[off + 1]!]}:${HEX[buf[off + 2]!]}:${HEX[buf[off + 3]!]}:${HEX[buf[off + 4]!]}:${HEX[buf[off + 5]!]}`;
}

/** `ip` as a new 4-byte Buffer. */
export function ip4Bytes(ip: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  writeIp4(b, 0, ip);
  return b;
}

/** `mac` as a new 6-byte Buffer. */
export function macBytes(mac: string): Buffer {
  const b = Buffer.allocUnsafe(6);
  writeMac(b, 0, mac);
  return b;
}

/** A netlink attribute's payload as an address: undefined when absent or not 4 bytes long. */
export function ip4Of(b: Uint8Array | undefined): string | undefined {
  return b && b.length === 4 ? readIp4(b, 0) : undefined;
}

/** A netlink attribute's payload as a MAC: undefined when absent or not 6 bytes long. */
export function macOf(b: Uint8Array | undefined): string | undefined {
  return b && b.length === 6 ? readMac(b, 0) : undefined;
}
