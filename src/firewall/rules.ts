// twill's nftables table, rendered from plain data (pure: no process, no kernel).
//
// What it holds, all in `table ip twill` and nowhere else:
// - vxlan_in (prerouting, priority raw): a VXLAN datagram to a local address is accepted only
//   from a peer's PublicIP (set vxlan_peers); any other source is counted (named counter
//   vxlan_foreign) and dropped. The kernel's VXLAN device decapsulates from any source —
//   `nolearning` only stops it learning — so without this anyone reaching UDP <port> injects
//   frames into every pod with a forged pod source. Priority raw: dropped before conntrack
//   makes an entry for it. `fib daddr type local`: only datagrams for this host, never ones it
//   routes for someone else. Peers are set elements, changed one by one (peerChanges; written by set-elements.ts),
//   never a rule per peer. Present whenever the kernel VXLAN device is (the userspace datapath
//   checks sources itself), independent of --ip-masq.
// - forward (filter): accept from and to the cluster network, as flannel does, so a host whose
//   own forward policy is drop still carries pods. It cannot override a drop in another table's
//   base chain (every base chain on a hook must accept): listing.ts finds that case.
// - postrouting (nat, srcnat), only with --ip-masq: flannel's masquerade semantics, read from
//   its iptables rules (pkg/trafficmngr/iptables), which its nftables port meant to mirror:
//     kube-proxy's masquerade mark (bit 0x4000) → leave to kube-proxy (no double NAT)
//     own pods → cluster, cluster → own pods            → keep addresses (pod↔pod never NATed)
//     not cluster → own pods                             → keep (host/external to local pods)
//     cluster → anything but multicast                   → masquerade, fully random ports
//     not cluster → cluster (host to remote pods)        → masquerade (reply comes back through
//                                                          the overlay to our VTEP address)
//   flannel's nftables version writes the third rule as "not own pods → cluster", which also
//   returns for the last rule's traffic and makes it dead; we keep the iptables meaning.
// The whole table is replaced in one transaction: `table ip twill {}` (create if absent) +
// `delete table ip twill` + the new table, in one `nft -f -` run — no moment without rules,
// no stale rule surviving, no other table touched.
import { isIPv4 } from 'node:net';
import { formatPrefix4, parsePrefix4 } from '../ip/ipv4';
import { TwillError } from '../base/twill-error';

export const TABLE_FAMILY = 'ip';
export const TABLE_NAME = 'twill';
export const PEER_SET = 'vxlan_peers';
export const FOREIGN_COUNTER = 'vxlan_foreign';
/** kube-proxy's KUBE-MARK-MASQ bit: traffic it will masquerade itself. */
export const KUBE_PROXY_MASQ_MARK = 0x4000;
const MULTICAST = '224.0.0.0/4';

export interface FirewallSpec {
  /** The cluster network, e.g. "10.244.0.0/16". */
  network: string;
  /** This host's pod subnet, e.g. "10.244.7.0/24". */
  podSubnet: string;
  ipMasq: boolean;
  /** The VXLAN source filter: peers' PublicIPs and the VXLAN UDP port; null: no filter. */
  vxlan: { port: number; peers: ReadonlySet<string> } | null;
}

export class FirewallSpecError extends TwillError<'ERR_FIREWALL_SPEC'> {
  constructor(message: string) {
    super('ERR_FIREWALL_SPEC', message);
    this.name = 'FirewallSpecError';
  }
}

function prefix(s: string, what: string): string {
  try {
    return formatPrefix4(parsePrefix4(s));
  } catch (err) {
    throw new FirewallSpecError(`${what}: "${s}" is not an IPv4 prefix (${(err as Error).message})`);
  }
}

function addr(s: string): string {
  if (!isIPv4(s)) throw new FirewallSpecError(`peer address "${s}" is not IPv4`);
  return s;
}

function port(p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new FirewallSpecError(`VXLAN port ${p} is out of range`);
  return p;
}

/** Sorted, validated peer addresses (a stable order keeps rendered text comparable). */
export function sortedPeers(peers: Iterable<string>): string[] {
  return [...peers].map(addr).sort();
}

function elements(peers: readonly string[]): string {
  return peers.length === 0 ? '' : ` elements = { ${peers.join(', ')} }`;
}

/** The lines of twill's table (without the replace preamble). */
export function renderTable(spec: FirewallSpec): string {
  const net = prefix(spec.network, 'cluster network');
  const own = prefix(spec.podSubnet, 'pod subnet');
  const out: string[] = [`table ${TABLE_FAMILY} ${TABLE_NAME} {`];
  if (spec.vxlan) {
    const p = port(spec.vxlan.port);
    out.push(
      `  set ${PEER_SET} { type ipv4_addr;${elements(sortedPeers(spec.vxlan.peers))} }`,
      `  counter ${FOREIGN_COUNTER} { }`,
      '  chain vxlan_in {',
      '    type filter hook prerouting priority raw; policy accept;',
      `    udp dport ${p} fib daddr type local ip saddr != @${PEER_SET} counter name "${FOREIGN_COUNTER}" drop`,
      '  }',
    );
  }
  out.push(
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    ip saddr ${net} accept`,
    `    ip daddr ${net} accept`,
    '  }',
  );
  if (spec.ipMasq) {
    const mark = `0x${KUBE_PROXY_MASQ_MARK.toString(16).padStart(8, '0')}`;
    out.push(
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    meta mark & ${mark} == ${mark} return`,
      `    ip saddr ${own} ip daddr ${net} return`,
      `    ip saddr ${net} ip daddr ${own} return`,
      `    ip saddr != ${net} ip daddr ${own} return`,
      `    ip saddr ${net} ip daddr != ${MULTICAST} masquerade fully-random`,
      `    ip saddr != ${net} ip daddr ${net} masquerade fully-random`,
      '  }',
    );
  }
  out.push('}');
  return out.join('\n') + '\n';
}

/** One transaction replacing twill's table as a whole (creating it if absent). */
export function renderReplace(spec: FirewallSpec): string {
  return `table ${TABLE_FAMILY} ${TABLE_NAME} {}\ndelete table ${TABLE_FAMILY} ${TABLE_NAME}\n${renderTable(spec)}`;
}

/** One transaction removing twill's table, present or not. */
export function renderRemove(): string {
  return `table ${TABLE_FAMILY} ${TABLE_NAME} {}\ndelete table ${TABLE_FAMILY} ${TABLE_NAME}\n`;
}

export interface PeerChanges {
  added: string[];
  removed: string[];
}

/** Which peer addresses to add to and delete from the set to go from `before` to `after`. */
export function peerChanges(before: ReadonlySet<string>, after: ReadonlySet<string>): PeerChanges {
  return {
    added: sortedPeers([...after].filter((p) => !before.has(p))),
    removed: sortedPeers([...before].filter((p) => !after.has(p))),
  };
}

/** Same table shape (everything but the peer set's members): only elements need to change. */
export function sameShape(a: FirewallSpec, b: FirewallSpec): boolean {
  return (
    a.network === b.network &&
    a.podSubnet === b.podSubnet &&
    a.ipMasq === b.ipMasq &&
    (a.vxlan === null) === (b.vxlan === null) &&
    (a.vxlan === null || a.vxlan.port === b.vxlan!.port)
  );
}
