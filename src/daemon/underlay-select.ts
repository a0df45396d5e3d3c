// Which interface carries the overlay (pure). flannel's precedence, learnt from its main.go
// and pkg/ipmatch, since multi-NIC hosts are where it bit (flannel #98, #1192):
//   1. each --iface in the order given: an interface name, or an IPv4 address (the interface
//      holding it, and that address);
//   2. each --iface-regex in order: the first interface with an IPv4 address matching it (that
//      address), else the first interface whose name matches;
//   3. --iface-can-reach: the interface of the kernel's route to that address;
//   none of these given: the interface holding --public-ip, else the one with the default route.
// A candidate that does not exist or has no IPv4 address is passed over (and named in the
// error if nothing is left); a given choice never falls back to the default route.
import { parseIp4 } from '../ip/ipv4';
import { routeLookup, type UnderlayRoute } from '../backends/reach';

export interface UnderlayChoice {
  iface: readonly string[];
  ifaceRegex: readonly string[];
  ifaceCanReach: string | undefined;
  publicIp: string | undefined;
}

export interface LinkFact {
  index: number;
  name: string;
}
export interface AddrFact {
  index: number;
  ip: string;
}

export type Selected = { ok: true; index: number; name: string; ip: string; by: string } | { ok: false; why: string };

const OWN_PROTOCOL = 113;

export function selectUnderlay(links: readonly LinkFact[], addrs: readonly AddrFact[], routes: readonly UnderlayRoute[], opts: UnderlayChoice): Selected {
  const byIndex = new Map(links.map((l) => [l.index, l]));
  const addrsOf = (index: number): string[] => addrs.filter((a) => a.index === index).map((a) => a.ip);
  const tried: string[] = [];
  /** The interface, with `ip` (or --public-ip if it holds it, or its first address). */
  const pick = (link: LinkFact | undefined, by: string, ip?: string): Selected | undefined => {
    if (!link) {
      tried.push(`${by}: no such interface`);
      return undefined;
    }
    const own = addrsOf(link.index);
    if (own.length === 0) {
      tried.push(`${by}: ${link.name} has no IPv4 address`);
      return undefined;
    }
    const chosen = opts.publicIp && own.includes(opts.publicIp) ? opts.publicIp : (ip ?? own[0]!);
    return { ok: true, index: link.index, name: link.name, ip: chosen, by };
  };
  const given = opts.iface.length > 0 || opts.ifaceRegex.length > 0 || opts.ifaceCanReach !== undefined;

  for (const want of opts.iface) {
    const holder = addrs.find((a) => a.ip === want);
    const link = holder ? byIndex.get(holder.index) : links.find((l) => l.name === want);
    const got = pick(link, `--iface ${want}`, holder?.ip);
    if (got) return got;
  }
  for (const text of opts.ifaceRegex) {
    const re = new RegExp(text);
    const byAddr = addrs.find((a) => re.test(a.ip) && byIndex.has(a.index));
    const got = byAddr ? pick(byIndex.get(byAddr.index), `--iface-regex ${text}`, byAddr.ip) : pick(links.find((l) => re.test(l.name)), `--iface-regex ${text}`);
    if (got) return got;
  }
  if (opts.ifaceCanReach !== undefined) {
    const r = routeLookup(routes, OWN_PROTOCOL)(parseIp4(opts.ifaceCanReach));
    const got = pick(r?.oif !== undefined ? byIndex.get(r.oif) : undefined, `--iface-can-reach ${opts.ifaceCanReach}`);
    if (got) return got;
  }
  if (given) return { ok: false, why: `no usable underlay interface (${tried.join('; ')})` };

  if (opts.publicIp) {
    const holder = addrs.find((a) => a.ip === opts.publicIp);
    const got = holder ? pick(byIndex.get(holder.index), `--public-ip ${opts.publicIp}`) : undefined;
    if (got) return got;
  }
  const def = routes.find((r) => r.dstLen === 0 && r.oif !== undefined && r.protocol !== OWN_PROTOCOL);
  if (!def) return { ok: false, why: 'no --iface given and no IPv4 default route to pick the underlay interface from' };
  return pick(byIndex.get(def.oif!), 'default route') ?? { ok: false, why: tried.join('; ') };
}
