// The probe wire format: what twilld's prober sends to a peer's responder and gets back.
//
//   0        4    5     6       8     12       16      20 ...
//   "TWPB" | ver | kind | flags | seq | sender | token | zero padding up to the probe's size
//
// - kind 1 = request, 2 = reply. flags bit 0 = full-size probe (the sender padded it to the
//   pod MTU and sent it with DF). seq and token are echoed: the token is random per prober
//   run, so a reply is matched to one of our own requests, not to something forged or late
//   from a previous run. sender is the IPv4 overlay address of whoever wrote the datagram.
// - A reply is the request with kind and sender rewritten, byte for byte the same length:
//   a responder never sends more than it received (no amplification, whatever the input).
// - The padding must be zero: a path that corrupts payloads is a broken path, and a strict
//   decoder gives garbage nothing to hide in. Numbers are big-endian.
// Pure: no sockets here.

export const PROBE_MAGIC = 0x54575042; // "TWPB"
export const PROBE_VERSION = 1;
export const PROBE_HEADER_BYTES = 20;
/** Largest probe accepted or built: a 9000-byte jumbo MTU minus IPv4 and UDP headers. */
export const PROBE_MAX_BYTES = 9000 - 28;
/** IPv4 + UDP headers: a probe of pod-MTU size carries MTU − 28 bytes of payload. */
export const IP_UDP_HEADER_BYTES = 28;

export const KIND_REQUEST = 1;
export const KIND_REPLY = 2;
export const FLAG_FULL = 1;

export interface Probe {
  kind: typeof KIND_REQUEST | typeof KIND_REPLY;
  full: boolean;
  seq: number;
  sender: number;
  token: number;
  /** Whole datagram length. */
  size: number;
}

export type DropReason = 'short' | 'long' | 'magic' | 'version' | 'kind' | 'flags' | 'padding';
export const DROP_REASONS: readonly DropReason[] = ['short', 'long', 'magic', 'version', 'kind', 'flags', 'padding'];

export type DecodeResult = { ok: true; probe: Probe } | { ok: false; reason: DropReason };

/** Builds a request of exactly `size` bytes (PROBE_HEADER_BYTES..PROBE_MAX_BYTES). */
export function encodeRequest(p: { full: boolean; seq: number; sender: number; token: number; size: number }): Buffer {
  if (!Number.isInteger(p.size) || p.size < PROBE_HEADER_BYTES || p.size > PROBE_MAX_BYTES) {
    throw new RangeError(`probe size ${p.size} outside ${PROBE_HEADER_BYTES}..${PROBE_MAX_BYTES}`);
  }
  const b = Buffer.alloc(p.size); // zero padding
  b.writeUInt32BE(PROBE_MAGIC, 0);
  b.writeUInt8(PROBE_VERSION, 4);
  b.writeUInt8(KIND_REQUEST, 5);
  b.writeUInt16BE(p.full ? FLAG_FULL : 0, 6);
  b.writeUInt32BE(p.seq >>> 0, 8);
  b.writeUInt32BE(p.sender >>> 0, 12);
  b.writeUInt32BE(p.token >>> 0, 16);
  return b;
}

export function decodeProbe(b: Uint8Array): DecodeResult {
  if (b.length < PROBE_HEADER_BYTES) return { ok: false, reason: 'short' };
  if (b.length > PROBE_MAX_BYTES) return { ok: false, reason: 'long' };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(0) !== PROBE_MAGIC) return { ok: false, reason: 'magic' };
  if (v.getUint8(4) !== PROBE_VERSION) return { ok: false, reason: 'version' };
  const kind = v.getUint8(5);
  if (kind !== KIND_REQUEST && kind !== KIND_REPLY) return { ok: false, reason: 'kind' };
  const flags = v.getUint16(6);
  if ((flags & ~FLAG_FULL) !== 0) return { ok: false, reason: 'flags' };
  for (let i = PROBE_HEADER_BYTES; i < b.length; i++) if (b[i] !== 0) return { ok: false, reason: 'padding' };
  return {
    ok: true,
    probe: { kind, full: (flags & FLAG_FULL) !== 0, seq: v.getUint32(8), sender: v.getUint32(12), token: v.getUint32(16), size: b.length },
  };
}

/**
 * The answer to a decoded request: a copy of it with kind = reply and our address as sender.
 * Same length as the request, by construction.
 */
export function encodeReply(request: Uint8Array, responder: number): Buffer {
  const b = Buffer.from(request);
  b.writeUInt8(KIND_REPLY, 5);
  b.writeUInt32BE(responder >>> 0, 12);
  return b;
}

/** Payload bytes of a probe whose IPv4 packet is exactly `mtu` bytes. */
export function fullProbeSize(mtu: number): number {
  return Math.min(PROBE_MAX_BYTES, Math.max(PROBE_HEADER_BYTES, mtu - IP_UDP_HEADER_BYTES));
}
