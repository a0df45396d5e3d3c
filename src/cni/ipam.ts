// Pod address allocation on disk, host-local style, without locks.
//
// One file per allocated address in `<dataDir>/<network name>/`, named by the address and
// holding "<containerID>\r\n<ifname>" (host-local's format, so existing tooling and habits
// carry over). A file is created with O_CREAT|O_EXCL: the kernel lets exactly one creator win,
// so parallel ADDs (separate processes) can never hand out one address twice, and a crash can
// leave at most an unused reservation, never a shared one. DEL and GC find allocations by
// reading the files, so nothing but the directory is state.
//
// `last_reserved_ip.0` is only a hint for round-robin (start after the last allocation, so a
// released address is not reused at once while stale ARP/conntrack entries still point at it).
// It is replaced by rename, and any unreadable or out-of-range value just means "start at the
// beginning".
//
// Edge cases: an O_EXCL file is visible before its owner is written; readers treat an empty or
// garbled file as "owner unknown" (DEL skips it; GC removes it only once it is older than
// ORPHAN_AGE_MS). Never allocated: the network address, the gateway, the broadcast address.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomicSync } from '../base/atomic-write';
import { CniError } from './errors';
import { broadcast, formatIp4, ipInPrefix, parseIp4, tryParseIp4, type Ip4, type Prefix4 } from '../ip/ipv4';

export interface Owner {
  containerId: string;
  ifname: string;
}

export interface Allocation {
  ip: string;
  /** undefined when the file is empty or unreadable (a reservation being written, or torn). */
  owner: Owner | undefined;
  file: string;
}

export const HINT_FILE = 'last_reserved_ip.0';
export const ORPHAN_AGE_MS = 60_000;
const IP_NAME = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

export function ipamDir(dataDir: string, network: string): string {
  return path.join(dataDir, network);
}

function encodeOwner(o: Owner): string {
  return `${o.containerId}\r\n${o.ifname}`;
}

export function decodeOwner(text: string): Owner | undefined {
  const [containerId, ifname] = text.split(/\r?\n/);
  if (!containerId || !ifname) return undefined;
  return { containerId: containerId.trim(), ifname: ifname.trim() };
}

function sameOwner(a: Owner | undefined, b: Owner): boolean {
  return a !== undefined && a.containerId === b.containerId && a.ifname === b.ifname;
}

function errCode(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

/** How many addresses of `subnet` can be allocated: all but network, gateway and broadcast. */
export function usableCount(subnet: Prefix4, gateway: Ip4): number {
  if (subnet.len > 30) return 0;
  const gwTakesOne = ipInPrefix(gateway, subnet) && gateway !== subnet.ip && gateway !== broadcast(subnet);
  return 2 ** (32 - subnet.len) - 2 - (gwTakesOne ? 1 : 0);
}

function readHint(dir: string, subnet: Prefix4): Ip4 | undefined {
  try {
    const ip = tryParseIp4(fs.readFileSync(path.join(dir, HINT_FILE), 'utf8').trim());
    return ip !== null && ((ip - subnet.ip) >>> 0) < 2 ** (32 - subnet.len) ? ip : undefined;
  } catch {
    return undefined;
  }
}

function writeHint(dir: string, ip: Ip4): void {
  // Best effort and not durable: a lost hint only changes where the next search starts.
  try {
    writeFileAtomicSync(path.join(dir, HINT_FILE), formatIp4(ip), { mode: 0o644, durable: false });
  } catch {
    // see above
  }
}

/** Creates the reservation file; false when the address is taken. */
function tryReserve(file: string, content: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o644);
  } catch (err) {
    if (errCode(err) === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, content);
  } catch (err) {
    fs.closeSync(fd);
    unlinkIfPresent(file);
    throw err;
  }
  fs.closeSync(fd);
  return true;
}

/**
 * Reserves the next free address after the last allocation. Throws ERR_CNI_IPAM_EXHAUSTED
 * when every usable address is taken.
 */
export function allocate(dir: string, subnet: Prefix4, gateway: Ip4, owner: Owner): Ip4 {
  const size = 2 ** (32 - subnet.len);
  const bcast = broadcast(subnet);
  const content = encodeOwner(owner);
  const hint = readHint(dir, subnet);
  const start = hint === undefined ? 1 : (((hint - subnet.ip) >>> 0) + 1) % size;
  let madeDir = false;
  for (let i = 0; i < size; i++) {
    const ip = (subnet.ip + ((start + i) % size)) >>> 0;
    if (ip === subnet.ip || ip === bcast || ip === gateway) continue;
    const file = path.join(dir, formatIp4(ip));
    let ok: boolean;
    try {
      ok = tryReserve(file, content);
    } catch (err) {
      // First allocation of this network: create the directory once, then retry this address.
      if (errCode(err) !== 'ENOENT' || madeDir) throw err;
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      madeDir = true;
      ok = tryReserve(file, content);
    }
    if (ok) {
      writeHint(dir, ip);
      return ip;
    }
  }
  throw new CniError('ERR_CNI_IPAM_EXHAUSTED', `no free address left in ${formatIp4(subnet.ip)}/${subnet.len}`, `all ${usableCount(subnet, gateway)} usable addresses of the host subnet are allocated in ${dir}; DEL or GC stale pods`);
}

function readOwner(file: string): Owner | undefined {
  try {
    return decodeOwner(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Every reservation in `dir` (empty when the directory does not exist yet). */
export function listAllocations(dir: string): Allocation[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: Allocation[] = [];
  for (const name of names) {
    if (!IP_NAME.test(name) || tryParseIp4(name) === null) continue;
    const file = path.join(dir, name);
    out.push({ ip: name, owner: readOwner(file), file });
  }
  return out;
}

function unlinkIfPresent(file: string): boolean {
  try {
    fs.unlinkSync(file);
    return true;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** Rollback of one allocation: removed only while it is still ours. */
export function releaseIp(dir: string, ip: Ip4, owner: Owner): boolean {
  const file = path.join(dir, formatIp4(ip));
  if (!sameOwner(readOwner(file), owner)) return false;
  return unlinkIfPresent(file);
}

/** DEL: releases every address held by (containerID, ifname); returns them. */
export function releaseByOwner(dir: string, owner: Owner): string[] {
  const released: string[] = [];
  for (const a of listAllocations(dir)) {
    if (sameOwner(a.owner, owner) && unlinkIfPresent(a.file)) released.push(a.ip);
  }
  return released;
}

export function ownerOf(dir: string, ip: string): Owner | undefined {
  parseIp4(ip);
  return readOwner(path.join(dir, ip));
}

export function attachmentKey(o: Owner): string {
  return `${o.containerId}\0${o.ifname}`;
}

/**
 * GC: releases every reservation whose owner is not in `valid`, and ownerless ones older than
 * ORPHAN_AGE_MS (a crashed ADD between create and write). Errors are collected, not thrown.
 */
export function releaseAllExcept(dir: string, valid: ReadonlySet<string>, now = Date.now()): { released: string[]; errors: string[] } {
  const released: string[] = [];
  const errors: string[] = [];
  for (const a of listAllocations(dir)) {
    try {
      if (a.owner === undefined) {
        const age = now - fs.statSync(a.file).mtimeMs;
        if (age < ORPHAN_AGE_MS) continue;
      } else if (valid.has(attachmentKey(a.owner))) {
        continue;
      }
      if (unlinkIfPresent(a.file)) released.push(a.ip);
    } catch (err) {
      errors.push(`${a.file}: ${(err as Error).message}`);
    }
  }
  // Hint temp files of crashed writers.
  try {
    for (const name of fs.readdirSync(dir)) {
      if (!name.startsWith(`.${HINT_FILE}.`)) continue;
      try {
        if (now - fs.statSync(path.join(dir, name)).mtimeMs >= ORPHAN_AGE_MS) fs.unlinkSync(path.join(dir, name));
      } catch {
        // raced with its writer or another GC
      }
    }
  } catch {
    // no directory: nothing allocated
  }
  return { released, errors };
}
