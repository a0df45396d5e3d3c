// WireGuard keys as plain data: Curve25519 (X25519) keys are 32 bytes, written in base64 (44
// characters, one '=' of padding) in leases, the UAPI wants them in hex. A key that does not
// decode to exactly 32 bytes is not a key: the lease naming it is skipped, never fatal.
// The public key is derived with node:crypto (X25519), never by hand.
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';

export const KEY_BYTES = 32;
const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** The 32 bytes of a base64 key, or null (wrong length, bad alphabet, non-canonical padding bits). */
export function decodeKey(text: unknown): Buffer | null {
  if (typeof text !== 'string' || !BASE64_KEY.test(text)) return null;
  const b = Buffer.from(text, 'base64');
  return b.length === KEY_BYTES ? b : null;
}

export const encodeKey = (key: Uint8Array): string => Buffer.from(key).toString('base64');

/** base64 → hex, as the UAPI's `public_key=` and `preshared_key=` take it. */
export function keyHex(base64: string): string {
  const k = decodeKey(base64);
  if (!k) throw new RangeError('not a WireGuard key');
  return k.toString('hex');
}

// PKCS#8 and SPKI DER prefixes of an X25519 key: the raw 32 bytes follow.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

/** A fresh private key (32 raw bytes). */
export function generatePrivateKey(): Buffer {
  const { privateKey } = generateKeyPairSync('x25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(der.subarray(der.length - KEY_BYTES));
}

/** The public key of a raw private key. */
export function publicKeyOf(priv: Uint8Array): Buffer {
  if (priv.length !== KEY_BYTES) throw new RangeError('a WireGuard private key is 32 bytes');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, priv]), format: 'der', type: 'pkcs8' });
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  if (!der.subarray(0, SPKI_X25519.length).equals(SPKI_X25519)) throw new RangeError('unexpected X25519 public key encoding');
  return Buffer.from(der.subarray(SPKI_X25519.length));
}
