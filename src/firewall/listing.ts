// Reading `nft -j list ruleset` or its terse form `nft -t -j list ruleset` (pure): what of twill's table is in the kernel, how many
// foreign VXLAN datagrams it dropped, and which other tables' forward base chains drop by
// policy.
//
// Drift is judged against a fingerprint of our table taken from the kernel's own listing
// right after we wrote it (the kernel normalises what nft sends: "priority raw" comes back as
// -300, prefixes as objects), with what legitimately changes stripped: handles (new on every
// replace), counter values, and the peer set's members (changed incrementally; compared with
// the desired peers directly instead).
//
// Why a foreign forward drop matters: in nftables every base chain on a hook sees the packet;
// an accept ends only its own chain, a drop anywhere is final. Docker's iptables-nft rules set
// the FORWARD policy to drop, and then pod traffic dies there whatever twill accepts.
import { FOREIGN_COUNTER, PEER_SET, TABLE_FAMILY, TABLE_NAME } from './rules';
import { TwillError } from '../base/twill-error';

export class ListingError extends TwillError<'ERR_NFT_LISTING'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NFT_LISTING', message, options);
    this.name = 'ListingError';
  }
}

export interface ForwardDrop {
  family: string;
  table: string;
  chain: string;
}

export interface RulesetFacts {
  /** Our table is present. */
  present: boolean;
  /** Fingerprint of our table (see the note above); '' when absent. */
  fingerprint: string;
  /** Names of our table's chains, sorted. */
  chains: string[];
  /** Our table has the peer set. */
  peerSet: boolean;
  /** Members of the peer set; null when the table has no such set or the listing was terse. */
  peers: Set<string> | null;
  /** Packets counted by the foreign-VXLAN counter; null when absent. */
  foreignDropped: number | null;
  /** Other tables' forward base chains whose policy is drop. */
  forwardDrops: ForwardDrop[];
}

type Obj = Record<string, unknown>;

const VOLATILE = new Set(['handle', 'packets', 'bytes', 'elem']);

function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip);
  if (v === null || typeof v !== 'object') return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v as Obj)) if (!VOLATILE.has(k)) out[k] = strip(x);
  return out;
}

function elemAddress(e: unknown): string | undefined {
  if (typeof e === 'string') return e;
  // {"elem": {"val": "1.2.3.4", ...}} when elements carry a counter, timeout or comment.
  const inner = (e as { elem?: { val?: unknown } } | null)?.elem?.val;
  return typeof inner === 'string' ? inner : undefined;
}

/**
 * `members`: the listing holds the sets' members (`nft -j`); false for a terse one (`nft -t -j`,
 * which lists a set without its "elem" key whatever it holds, nft 1.0.6).
 */
export function parseRuleset(json: string, members = true): RulesetFacts {
  let doc: { nftables?: unknown };
  try {
    doc = JSON.parse(json) as { nftables?: unknown };
  } catch (err) {
    throw new ListingError('nft -j printed something that is not JSON', { cause: err });
  }
  if (!Array.isArray(doc.nftables)) throw new ListingError('nft -j output has no "nftables" array');
  const own: unknown[] = [];
  const facts: RulesetFacts = { present: false, fingerprint: '', chains: [], peerSet: false, peers: null, foreignDropped: null, forwardDrops: [] };
  for (const item of doc.nftables as Obj[]) {
    const [kind, body] = Object.entries(item)[0] ?? [];
    if (kind === undefined || body === null || typeof body !== 'object') continue;
    const o = body as Obj;
    const ours = o['family'] === TABLE_FAMILY && (kind === 'table' ? o['name'] === TABLE_NAME : o['table'] === TABLE_NAME);
    if (ours) {
      if (kind === 'table') facts.present = true;
      if (kind === 'set' && o['name'] === PEER_SET) {
        facts.peerSet = true;
        if (members) facts.peers = new Set((Array.isArray(o['elem']) ? o['elem'] : []).map(elemAddress).filter((x): x is string => x !== undefined));
      }
      if (kind === 'chain') facts.chains.push(String(o['name']));
      if (kind === 'counter' && o['name'] === FOREIGN_COUNTER && typeof o['packets'] === 'number') facts.foreignDropped = o['packets'];
      own.push({ [kind]: strip(o) });
      continue;
    }
    if (kind === 'chain' && o['hook'] === 'forward' && o['policy'] === 'drop' && (o['family'] === 'ip' || o['family'] === 'inet')) {
      facts.forwardDrops.push({ family: String(o['family']), table: String(o['table']), chain: String(o['name']) });
    }
  }
  facts.chains.sort();
  if (facts.present) facts.fingerprint = JSON.stringify(own);
  return facts;
}

/** What to tell the operator about a foreign forward drop, with what to change. */
export function forwardDropAdvice(d: ForwardDrop, network: string): string {
  return (
    `table ${d.family} ${d.table}, chain ${d.chain}: its forward policy is drop, and a drop in any table's base chain wins over twill's accept; ` +
    `pod traffic forwarded by this host is dropped unless that chain accepts the cluster network ${network}, e.g. ` +
    `"nft insert rule ${d.family} ${d.table} ${d.chain} ip saddr ${network} accept" and the same with "ip daddr" ` +
    `(iptables: iptables -I ${d.chain} -s ${network} -j ACCEPT; iptables -I ${d.chain} -d ${network} -j ACCEPT)`
  );
}
