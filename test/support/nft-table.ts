// twill's nftables table as the kernel lists it, read inside a test namespace.
import { sh, type Netns } from './netns';

export type Obj = Record<string, any>;

/** `nft -j <args>` in the namespace, without its metainfo; [] when nft fails (e.g. no such table). */
export function nftJson(ns: Netns, ...args: string[]): Obj[] {
  const out = sh('ip', ['netns', 'exec', ns.name, 'nft', '-j', ...args], { allowFail: true });
  return out ? ((JSON.parse(out) as { nftables: Obj[] }).nftables ?? []).filter((o) => !('metainfo' in o)) : [];
}

export function ownTable(ns: Netns): Obj[] {
  return nftJson(ns, 'list', 'table', 'ip', 'twill');
}

/** The names of twill's chains, sorted. */
export function chains(ns: Netns): string[] {
  return ownTable(ns).filter((o) => o['chain']).map((o) => o['chain'].name).sort();
}

/** The members of twill's VXLAN peer set, sorted ([] when the set is missing). */
export function peerSet(ns: Netns): string[] {
  const set = ownTable(ns).find((o) => o['set']?.name === 'vxlan_peers');
  return ((set?.['set'].elem ?? []) as string[]).slice().sort();
}
