// This host's WireGuard private key, in <stateDir>/wireguard-private-key (base64, mode 0600,
// written atomically). Made once and reused across restarts: every peer has our public key in
// its configuration, so a new key per start would cut traffic until each peer saw the lease.
// A file that does not hold a key is replaced (and said so); the key itself is never logged.
// Rotation writes a fresh key in its place; the next twilld start publishes its public key
// (the lease is rewritten) and every peer replaces us within a second.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { StateError } from '../../subnet/state';
import { writeFileAtomic } from '../../base/atomic-write';
import { decodeKey, encodeKey, generatePrivateKey, publicKeyOf } from './key';

export const WIREGUARD_KEY_FILE = 'wireguard-private-key';

export interface WireguardKey {
  privateKey: Buffer;
  /** Base64. */
  publicKey: string;
  created: boolean;
  replacedCorrupt: boolean;
}

async function readKey(file: string): Promise<{ key: Buffer | null; existed: boolean }> {
  try {
    return { key: decodeKey((await fsp.readFile(file, 'utf8')).trim()), existed: true };
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return { key: null, existed: false };
    throw new StateError(`cannot read ${file}`, file, err);
  }
}

async function writeKey(file: string, key: Buffer): Promise<void> {
  try {
    await writeFileAtomic(file, `${encodeKey(key)}\n`, { mode: 0o600, durable: true, mkdirs: true });
  } catch (err) {
    throw new StateError(`cannot write ${file}`, file, err);
  }
}

export async function loadOrCreateWireguardKey(stateDir: string): Promise<WireguardKey> {
  const file = path.join(stateDir, WIREGUARD_KEY_FILE);
  const { key, existed } = await readKey(file);
  if (key) return { privateKey: key, publicKey: encodeKey(publicKeyOf(key)), created: false, replacedCorrupt: false };
  const fresh = generatePrivateKey();
  await writeKey(file, fresh);
  return { privateKey: fresh, publicKey: encodeKey(publicKeyOf(fresh)), created: true, replacedCorrupt: existed };
}

/** A new key in place of the old; returns the new public key (base64). */
export async function rotateWireguardKey(stateDir: string): Promise<string> {
  const fresh = generatePrivateKey();
  await writeKey(path.join(stateDir, WIREGUARD_KEY_FILE), fresh);
  return encodeKey(publicKeyOf(fresh));
}
