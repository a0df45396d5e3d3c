// The VXLAN header (RFC 7348 §5), as plain functions over bytes. Pure: no I/O, never throws on
// what arrives from the network — every datagram gets a classification instead.
//
//   0                   1                   2                   3
//   |R|R|R|R|I|R|R|R|            Reserved (24 bits)                 |
//   |          VXLAN Network Identifier (VNI)       |   Reserved    |
//
// Receive rule, deliberately the Linux kernel's rather than the RFC's: the RFC says reserved
// bits are "ignored on receipt", but the kernel VTEP drops a datagram with any flag other than
// I, or a non-zero reserved byte, as malformed. A mixed cluster must treat the same datagram
// the same way on every host, so we follow the kernel. native/userspace.c implements exactly
// these checks in the same order (short → bad-flags → wrong-vni → runt-frame); a unit test
// compares the two on random input.
import { TwillError } from '../base/twill-error';

export const VXLAN_HEADER_LEN = 8;
export const ETH_HEADER_LEN = 14;
/** The I flag: "a valid VNI is present". */
export const VXLAN_FLAG_I = 0x08;
export const MAX_VNI = 0xffffff;

/** Why a received datagram is not a frame for us. */
export type DecodeDropReason =
  /** Fewer than 8 bytes: not even a VXLAN header. */
  | 'short'
  /** I flag missing, or a reserved flag/byte set. */
  | 'bad-flags'
  /** A VNI other than ours. */
  | 'wrong-vni'
  /** Header fine, but the inner frame is shorter than an Ethernet header. */
  | 'runt-frame';

/** Same order as native/userspace.c's V_* codes (index = code). */
export const DECODE_RESULTS = ['ok', 'short', 'bad-flags', 'wrong-vni', 'runt-frame'] as const;

export type DecodeResult =
  | { ok: true; vni: number; frame: Uint8Array }
  | { ok: false; reason: DecodeDropReason };

export class VxlanCodecError extends TwillError<'ERR_VXLAN_CODEC'> {
  constructor(message: string) {
    super('ERR_VXLAN_CODEC', message);
    this.name = 'VxlanCodecError';
  }
}

export function isValidVni(vni: unknown): vni is number {
  return typeof vni === 'number' && Number.isInteger(vni) && vni >= 0 && vni <= MAX_VNI;
}

/** Writes the 8-byte header for `vni` at `offset` of `out` (a new buffer when omitted). */
export function encodeVxlanHeader(vni: number, out?: Uint8Array, offset = 0): Uint8Array {
  // Our own callers pass config values: a bad VNI is a programming error, not network input.
  if (!isValidVni(vni)) throw new VxlanCodecError(`VNI must be an integer 0..${MAX_VNI}, got ${String(vni)}`);
  const buf = out ?? new Uint8Array(VXLAN_HEADER_LEN);
  if (offset < 0 || offset + VXLAN_HEADER_LEN > buf.length) throw new VxlanCodecError('output buffer too small for a VXLAN header');
  buf[offset] = VXLAN_FLAG_I;
  buf[offset + 1] = 0;
  buf[offset + 2] = 0;
  buf[offset + 3] = 0;
  buf[offset + 4] = (vni >>> 16) & 0xff;
  buf[offset + 5] = (vni >>> 8) & 0xff;
  buf[offset + 6] = vni & 0xff;
  buf[offset + 7] = 0;
  return buf;
}

/** Header + frame as one datagram payload. */
export function encapsulate(vni: number, frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(VXLAN_HEADER_LEN + frame.length);
  encodeVxlanHeader(vni, out, 0);
  out.set(frame, VXLAN_HEADER_LEN);
  return out;
}

/**
 * Classifies one UDP payload received on the VXLAN port. On success `frame` is a view into
 * `datagram` (no copy). Never throws, whatever `datagram` holds.
 */
export function decodeVxlan(datagram: Uint8Array, expectedVni: number): DecodeResult {
  if (!(datagram instanceof Uint8Array) || datagram.length < VXLAN_HEADER_LEN) return { ok: false, reason: 'short' };
  if (datagram[0] !== VXLAN_FLAG_I || datagram[1] !== 0 || datagram[2] !== 0 || datagram[3] !== 0 || datagram[7] !== 0) {
    return { ok: false, reason: 'bad-flags' };
  }
  const vni = (datagram[4]! << 16) | (datagram[5]! << 8) | datagram[6]!;
  if (vni !== expectedVni) return { ok: false, reason: 'wrong-vni' };
  if (datagram.length - VXLAN_HEADER_LEN < ETH_HEADER_LEN) return { ok: false, reason: 'runt-frame' };
  return { ok: true, vni, frame: datagram.subarray(VXLAN_HEADER_LEN) };
}
