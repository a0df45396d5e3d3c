// Ethernet MAC addresses as normalised strings ("0e:1f:aa:00:12:34").
//
// A VTEP MAC is published in etcd and programmed as a permanent neighbour and FDB entry on
// every other host, so only unicast, non-zero addresses are accepted: a multicast (I/G bit set)
// or all-zero "MAC" would make the kernel flood or drop the overlay traffic.
// Only the colon form is accepted (what flannel and `ip link` write); other notations
// (hyphens, Cisco dots, 8- or 20-byte addresses) are rejected rather than normalised.
import { randomBytes } from 'node:crypto';
import { macBytes, readMac } from './bytes';
import { IpError } from './ipv4';

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function check(bytes: Uint8Array, shown: string): void {
  if ((bytes[0]! & 0x01) !== 0) throw new IpError('ERR_INVALID_MAC', `MAC ${shown} is multicast, a unicast address is required`);
  if (bytes.every((x) => x === 0)) throw new IpError('ERR_INVALID_MAC', `MAC ${shown} is all zeros`);
}

export function parseMac(s: string): string {
  const lower = typeof s === 'string' ? s.toLowerCase() : '';
  if (!MAC_RE.test(lower)) throw new IpError('ERR_INVALID_MAC', `invalid MAC address ${JSON.stringify(s)} (expected aa:bb:cc:dd:ee:ff)`);
  check(macBytes(lower), lower);
  return lower;
}

/** Like parseMac but returns null instead of throwing (for decoding untrusted data). */
export function tryParseMac(s: unknown): string | null {
  if (typeof s !== 'string') return null;
  try {
    return parseMac(s);
  } catch {
    return null;
  }
}

export function macToBuffer(mac: string): Buffer {
  return macBytes(parseMac(mac));
}

export function macFromBuffer(b: Uint8Array): string {
  if (b.length !== 6) throw new IpError('ERR_INVALID_MAC', `MAC address must be 6 bytes, got ${b.length}`);
  const s = readMac(b, 0);
  check(b, s);
  return s;
}

/** A random locally administered (U/L bit set) unicast (I/G bit clear) MAC. */
export function randomLocalMac(rand: (n: number) => Buffer = randomBytes): string {
  const b = Buffer.from(rand(6).subarray(0, 6));
  if (b.length !== 6) throw new IpError('ERR_INVALID_MAC', `random source returned ${b.length} bytes, need 6`);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return macFromBuffer(b);
}
