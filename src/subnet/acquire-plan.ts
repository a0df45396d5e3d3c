// Which subnet to lease, decided from one listing of `<prefix>/subnets/` (pure: the registry's
// acquire loop carries the plan out against etcd and lists again when it loses a race).
//
// flannel's order: 1. our own key from an earlier run, found by PublicIP; 2. the subnet we had
// before (from the subnet file) if it is free and fits the network config; 3. a random free
// one. An own key that no longer fits the config (it changed under it) is deleted first — as
// flannel does, but only if nobody rewrote it meanwhile (the plan carries its mod revision).
// A second key naming our PublicIP is left to expire.
import { formatIp4, prefixesOverlap, type Ip4, type Prefix4 } from '../ip/ipv4';
import type { NetworkConfig } from '../config/network';
import { chooseFreeSubnet, isSubnetCompatible } from './allocator';
import { leaseValuePublicIp } from './lease';

/** One key of a subnet listing, decoded once. */
export interface ListedKey {
  key: string;
  value: string;
  /** null: not a lease key (see parseSubnetKey). */
  subnet: Prefix4 | null;
  modRevision: string;
  /** The etcd lease the key is attached to ('0': none). */
  lease: string;
}

export interface AcquireInput {
  config: NetworkConfig;
  publicIp: Ip4;
  preferred?: Prefix4;
}

export type AcquireChoice =
  /** Our key from an earlier run: take it back (adopting its etcd lease if alive). */
  | { kind: 'reuse'; subnet: Prefix4; entry: ListedKey }
  /** Create-if-absent, from the subnet file or at random. */
  | { kind: 'create'; subnet: Prefix4; from: 'preferred' | 'random' }
  /** Every subnet of the range is leased. */
  | { kind: 'full' };

export interface AcquirePlan {
  /** Own keys that do not fit the config: delete each if still at its mod revision, in order. */
  deleteStale: ListedKey[];
  /** Further keys naming our PublicIP (beside the one reused): left alone, worth a warning. */
  duplicates: ListedKey[];
  /** The preferred subnet, when it does not fit the config (ignored, worth a warning). */
  preferredMisfit: Prefix4 | null;
  choice: AcquireChoice;
}

function byKey(a: ListedKey, b: ListedKey): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export function planAcquire(input: AcquireInput, listed: readonly ListedKey[], random: () => number): AcquirePlan {
  const { config } = input;
  // In key order (etcd answers a range in key order already: then this is one pass).
  let sorted = true;
  for (let i = 1; i < listed.length && sorted; i++) sorted = byKey(listed[i - 1]!, listed[i]!) <= 0;
  const entries = sorted ? listed : [...listed].sort(byKey);

  const plan: AcquirePlan = { deleteStale: [], duplicates: [], preferredMisfit: null, choice: { kind: 'full' } };
  let mine: ListedKey | null = null;
  // A value without escapes can name our PublicIP only if it contains its dotted form (the
  // one form parseIp4 accepts): a cheap test that skips decoding 10,000 foreign leases.
  const ipText = formatIp4(input.publicIp);
  for (const e of entries) {
    if (!e.subnet || (!e.value.includes(ipText) && !e.value.includes('\\'))) continue;
    if (leaseValuePublicIp(e.value) !== input.publicIp) continue;
    if (!isSubnetCompatible(config, e.subnet)) plan.deleteStale.push(e);
    else if (mine) plan.duplicates.push(e);
    else mine = e;
  }
  if (mine) {
    plan.choice = { kind: 'reuse', subnet: mine.subnet!, entry: mine };
    return plan;
  }

  const taken: Prefix4[] = [];
  for (const e of entries) if (e.subnet) taken.push(e.subnet);

  const p = input.preferred;
  if (p) {
    if (!isSubnetCompatible(config, p)) plan.preferredMisfit = p;
    else if (!taken.some((t) => prefixesOverlap(t, p))) {
      plan.choice = { kind: 'create', subnet: p, from: 'preferred' };
      return plan;
    }
  }

  const chosen = chooseFreeSubnet(config, taken, random);
  if (chosen) plan.choice = { kind: 'create', subnet: chosen, from: 'random' };
  return plan;
}
