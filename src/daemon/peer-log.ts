// Peers joining, leaving and moving, each logged once. A host's log used to end at
// `"peers":0,"msg":"ready"` while it had three peers (issue 16): nothing said who came or went.
// The first set (a cold start, possibly 10,000 peers) is one summary line; a large change at
// once (a re-list after an outage) is one line with a count and a few examples.
import type { Logger } from '../observe/log';
import { formatIp4, formatPrefix4 } from '../ip/ipv4';
import type { Lease } from '../subnet/lease';

const EACH_UP_TO = 20;

interface PeerFacts {
  publicIp: string;
  /** The backend's data (a VTEP MAC, a public key), as the lease had it. */
  backendData: string;
}

function factsOf(p: Lease): PeerFacts {
  return { publicIp: formatIp4(p.publicIp), backendData: JSON.stringify(p.backendData) ?? '' };
}

export class PeerLog {
  private known: Map<string, PeerFacts> | undefined;

  constructor(private readonly log: Logger) {}

  /** The whole set (a full recompute): compared with the last one. */
  update(peers: Iterable<Lease>): void {
    const now = new Map<string, PeerFacts>();
    for (const p of peers) now.set(formatPrefix4(p.subnet), factsOf(p));
    const before = this.known;
    this.known = now;
    if (!before) {
      this.log.info({ peers: now.size }, 'peers known at start');
      return;
    }
    const joined: string[] = [];
    const moved: string[] = [];
    const left: string[] = [];
    for (const [subnet, f] of now) {
      const b = before.get(subnet);
      if (!b) joined.push(subnet);
      else if (b.publicIp !== f.publicIp || b.backendData !== f.backendData) moved.push(subnet);
    }
    for (const subnet of before.keys()) if (!now.has(subnet)) left.push(subnet);
    this.report('joined', joined, now, 'peer joined');
    this.report('changed', moved, now, 'peer changed its public IP or backend data');
    this.report('left', left, before, 'peer left');
  }

  /** One lease event's changes (src/backends/plan-index.ts): O(change), no walk over the set. */
  apply(d: { joined: readonly Lease[]; left: readonly Lease[]; changed: readonly Lease[] }): void {
    const known = this.known;
    if (!known) return;
    const subnets = (ls: readonly Lease[]): string[] => ls.map((l) => formatPrefix4(l.subnet));
    const left = new Map(d.left.map((l) => [formatPrefix4(l.subnet), factsOf(l)]));
    for (const subnet of left.keys()) known.delete(subnet);
    for (const l of [...d.joined, ...d.changed]) known.set(formatPrefix4(l.subnet), factsOf(l));
    this.report('joined', subnets(d.joined), known, 'peer joined');
    this.report('changed', subnets(d.changed), known, 'peer changed its public IP or backend data');
    this.report('left', [...left.keys()], left, 'peer left');
  }

  private report(what: string, subnets: string[], facts: Map<string, PeerFacts>, msg: string): void {
    if (subnets.length === 0) return;
    if (subnets.length <= EACH_UP_TO) {
      for (const subnet of subnets) this.log.info({ subnet, ...facts.get(subnet) }, msg);
      return;
    }
    this.log.info({ count: subnets.length, examples: subnets.slice(0, 5), peers: this.known?.size }, `${subnets.length} peers ${what}`);
  }
}
