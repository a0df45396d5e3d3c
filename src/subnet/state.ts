// Persistent daemon state in the state dir (default /var/lib/twill).
//
// The VTEP MAC is chosen once and kept: every other host has it in its neighbour and FDB
// entries, so a new MAC on each restart would mean a cluster-wide reprogramming and a window of
// black-holed traffic until every peer saw the lease update. A corrupt file (truncated write
// by an old version, hand edit) is replaced rather than fatal — the daemon can still work, the
// caller just warns that peers will see a MAC change.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { tryParseMac } from '../ip/mac';
import { writeFileAtomic } from '../base/atomic-write';
import { TwillError } from '../base/twill-error';

export const VTEP_MAC_FILE = 'vtep-mac';

export class StateError extends TwillError<'ERR_STATE'> {
  readonly path: string;

  constructor(message: string, filePath: string, cause?: unknown) {
    super('ERR_STATE', message, { cause });
    this.name = 'StateError';
    this.path = filePath;
  }
}

export interface VtepMacResult {
  /** Lowercase, colon-separated. */
  mac: string;
  /** A new MAC was generated (no file, or a corrupt one). */
  created: boolean;
  /** The file existed but did not hold a valid unicast MAC; it was overwritten. */
  replacedCorrupt: boolean;
}

/** A usable VTEP MAC: six colon-separated octets, unicast, not all zeros. Returns it normalised or null. */
export function normalizeVtepMac(text: string): string | null {
  // parseMac's rules: multicast/broadcast cannot be a device address, nor all zeros.
  return tryParseMac(text.trim());
}

export async function loadOrCreateVtepMac(stateDir: string, generate: () => string): Promise<VtepMacResult> {
  const file = path.join(stateDir, VTEP_MAC_FILE);
  let existing: string | null = null;
  try {
    existing = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOENT') {
      throw new StateError(`cannot read ${file}`, file, err);
    }
  }
  if (existing !== null) {
    const mac = normalizeVtepMac(existing);
    if (mac !== null) return { mac, created: false, replacedCorrupt: false };
  }

  const generated = generate();
  const mac = normalizeVtepMac(generated);
  if (mac === null) throw new StateError(`generated VTEP MAC "${generated}" is not a valid unicast MAC`, file);
  try {
    await writeFileAtomic(file, mac + '\n', { mode: 0o644, durable: true, mkdirs: true });
  } catch (err) {
    throw new StateError(`cannot write ${file}`, file, err);
  }
  return { mac, created: true, replacedCorrupt: existing !== null };
}
