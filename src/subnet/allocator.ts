// Picking a free subnet for this host (pure: data in, data out).
//
// Candidates are the SubnetLen-sized blocks from SubnetMin to SubnetMax inclusive. As flannel
// does, the free ones are collected in address order up to a window of 100 and one is chosen
// at random: hosts starting together then rarely race for the same key, while the scan stays
// short even on a /8 cut into /30s (millions of candidates, never materialised).
// A candidate is taken if it overlaps any taken prefix, whatever that prefix's length — a
// stray /16 key blocks all the /24s inside it rather than being silently double-allocated.
import { formatPrefix4, prefixesOverlap, type Prefix4 } from '../ip/ipv4';
import type { NetworkConfig } from '../config/network';

/** How many free candidates flannel collects before choosing one at random. */
export const FREE_WINDOW = 100;

type RangeConfig = Pick<NetworkConfig, 'subnetLen' | 'subnetMin' | 'subnetMax'>;

export function candidateCount(config: RangeConfig): number {
  if (config.subnetMax < config.subnetMin) return 0;
  return Math.floor((config.subnetMax - config.subnetMin) / 2 ** (32 - config.subnetLen)) + 1;
}

/** Every candidate subnet, lazily, in address order. */
export function* candidateSubnets(config: RangeConfig): Generator<Prefix4> {
  const step = 2 ** (32 - config.subnetLen);
  // Plain double arithmetic: values stay below 2^33, exact, and never wrap.
  for (let ip = config.subnetMin; ip <= config.subnetMax; ip += step) {
    yield { ip, len: config.subnetLen };
  }
}

/**
 * Whether a subnet may be (re)used under this config: right length, aligned, and within
 * SubnetMin..SubnetMax (flannel's rule for reusing a previous or recorded subnet).
 */
export function isSubnetCompatible(config: RangeConfig, subnet: Prefix4): boolean {
  if (subnet.len !== config.subnetLen) return false;
  if (subnet.ip % 2 ** (32 - config.subnetLen) !== 0) return false;
  return subnet.ip >= config.subnetMin && subnet.ip <= config.subnetMax;
}

/**
 * A free subnet chosen at random among the first `window` free candidates, or null when
 * every candidate is taken. `random` returns a number in [0, 1) like Math.random.
 */
export function chooseFreeSubnet(config: RangeConfig, taken: Iterable<Prefix4>, random: () => number, window: number = FREE_WINDOW): Prefix4 | null {
  // Same-length keys (the normal case) are checked by exact address in a set; anything else
  // falls back to an overlap test, which is rare enough to keep as a list.
  const sameLen = new Set<number>();
  const others: Prefix4[] = [];
  for (const p of taken) {
    if (p.len === config.subnetLen) sameLen.add(p.ip);
    else others.push(p);
  }
  const free: Prefix4[] = [];
  for (const c of candidateSubnets(config)) {
    if (sameLen.has(c.ip)) continue;
    if (others.length > 0 && others.some((o) => prefixesOverlap(o, c))) continue;
    free.push(c);
    if (free.length >= Math.max(1, window)) break;
  }
  if (free.length === 0) return null;
  const r = random();
  const i = Math.min(free.length - 1, Math.max(0, Math.floor((Number.isFinite(r) ? r : 0) * free.length)));
  return free[i]!;
}

/** For messages: "10.244.1.0/24 .. 10.244.255.0/24 (255 subnets)". */
export function describeRange(config: RangeConfig): string {
  const n = candidateCount(config);
  const first = formatPrefix4({ ip: config.subnetMin, len: config.subnetLen });
  const last = formatPrefix4({ ip: config.subnetMax, len: config.subnetLen });
  return `${first} .. ${last} (${n} subnet${n === 1 ? '' : 's'})`;
}
