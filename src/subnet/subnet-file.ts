// flannel's subnet file (/run/twill/subnet.env): the daemon's hand-off to the CNI plugin.
//
// Format is flanneld's, byte for byte, so tools written for flannel can read ours:
//   FLANNEL_NETWORK=10.244.0.0/16
//   FLANNEL_SUBNET=10.244.7.1/24      (first usable address of the lease, not the network)
//   FLANNEL_MTU=1450
//   FLANNEL_IPMASQ=false
// The CNI plugin reads it on every pod ADD, possibly while the daemon rewrites it, so writes
// are atomic (src/base/atomic-write.ts: temp file in the same directory, fsync, rename): a
// reader sees the old or the new file, never a torn one. Reading is tolerant (comments, blank lines, quotes, `export`) because
// admins do hand-edit it; validation happens separately in parseSubnetEnv.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { writeFileAtomic } from '../base/atomic-write';
import { parsePrefix4, prefixContains, type Prefix4 } from '../ip/ipv4';
import { TwillError } from '../base/twill-error';

export interface SubnetEnv {
  /** Cluster network, e.g. "10.244.0.0/16". */
  network: string;
  /** First usable address of this host's subnet with its length, e.g. "10.244.7.1/24". */
  subnet: string;
  mtu: number;
  ipMasq: boolean;
}

export class SubnetFileError extends TwillError<'ERR_SUBNET_FILE'> {
  /** The key that was missing or invalid, when the problem is one key. */
  readonly key: string | undefined;
  readonly path: string | undefined;

  constructor(message: string, opts: { key?: string; path?: string; cause?: unknown } = {}) {
    super('ERR_SUBNET_FILE', message, opts);
    this.name = 'SubnetFileError';
    this.key = opts.key;
    this.path = opts.path;
  }
}

const MIN_MTU = 68; // IPv4 minimum (RFC 791)
const MAX_MTU = 65535;

export function formatSubnetFile(env: SubnetEnv): string {
  checkCidr(env.network, 'FLANNEL_NETWORK');
  checkCidr(env.subnet, 'FLANNEL_SUBNET');
  checkMtu(env.mtu, 'FLANNEL_MTU');
  return `FLANNEL_NETWORK=${env.network}\nFLANNEL_SUBNET=${env.subnet}\nFLANNEL_MTU=${env.mtu}\nFLANNEL_IPMASQ=${env.ipMasq}\n`;
}

export async function writeSubnetFile(filePath: string, contents: string): Promise<void> {
  // Durable: the CNI plugin relies on it after a crash, before the daemon is back.
  await writeFileAtomic(filePath, contents, { mode: 0o644, durable: true, mkdirs: true });
}

/** The file's KEY=VALUE pairs, or null if the file does not exist. */
export async function readSubnetFile(filePath: string): Promise<Record<string, string> | null> {
  let text: string;
  try {
    text = await fsp.readFile(filePath, 'utf8');
  } catch (err) {
    if (isENOENT(err)) return null;
    throw new SubnetFileError(`cannot read subnet file ${filePath}`, { path: filePath, cause: err });
  }
  return parseEnvText(text);
}

/** Synchronous variant for the CNI plugin, a short-lived process with nothing else to do. */
export function readSubnetFileSync(filePath: string): Record<string, string> | null {
  let text: string;
  try {
    text = fs.readFileSync(filePath, 'utf8');
  } catch (err) {
    if (isENOENT(err)) return null;
    throw new SubnetFileError(`cannot read subnet file ${filePath}`, { path: filePath, cause: err });
  }
  return parseEnvText(text);
}

/** Tolerant KEY=VALUE parser; malformed lines are skipped, a later key overrides an earlier one. */
export function parseEnvText(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    let line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice('export '.length).trimStart();
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue;
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value[value.length - 1] === value[0]) {
      value = value.slice(1, -1);
    }
    out[key] = value;
  }
  return out;
}

export function parseSubnetEnv(record: Readonly<Record<string, string>>): SubnetEnv {
  const get = (key: string): string => {
    const v = record[key];
    if (v === undefined || v === '') throw new SubnetFileError(`subnet file has no ${key}`, { key });
    return v;
  };
  const network = get('FLANNEL_NETWORK');
  const subnet = get('FLANNEL_SUBNET');
  if (!prefixContains(checkCidr(network, 'FLANNEL_NETWORK'), checkCidr(subnet, 'FLANNEL_SUBNET'))) {
    throw new SubnetFileError(`FLANNEL_SUBNET ${subnet} is not inside FLANNEL_NETWORK ${network}`, { key: 'FLANNEL_SUBNET' });
  }
  const mtuText = get('FLANNEL_MTU');
  if (!/^\d+$/.test(mtuText)) throw new SubnetFileError(`FLANNEL_MTU "${mtuText}" is not a number`, { key: 'FLANNEL_MTU' });
  const mtu = Number(mtuText);
  checkMtu(mtu, 'FLANNEL_MTU');
  return { network, subnet, mtu, ipMasq: parseBool(get('FLANNEL_IPMASQ'), 'FLANNEL_IPMASQ') };
}

// Go's strconv.ParseBool spellings, since flanneld and hand-written files use them.
function parseBool(v: string, key: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new SubnetFileError(`${key} "${v}" is not a boolean`, { key });
}

function checkMtu(mtu: number, key: string): void {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new SubnetFileError(`${key} ${mtu} is out of range ${MIN_MTU}..${MAX_MTU}`, { key });
  }
}

function checkCidr(cidr: string, key: string): Prefix4 {
  try {
    return parsePrefix4(cidr);
  } catch (err) {
    throw new SubnetFileError(`${key} "${cidr}" is not an IPv4 address/prefix-length`, { key, cause: err });
  }
}

function isENOENT(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}
