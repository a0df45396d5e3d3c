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

/**
 * Keeps no copy of the peers: the daemon hands in the set before and after a full recompute
 * (its old and new plan index), or one event's delta.
 */
export class PeerLog {
  private started = false;

  constructor(private readonly log: Logger) {}

  /** The whole set (a full recompute), compared with the one before it (none at a cold start). */
  update(peers: Iterable<Lease>, previous: Iterable<Lease> | undefined): void {
    const now = factsBySubnet(peers);
    if (!this.started || previous === undefined) {
      this.started = true;
      this.log.info({ peers: now.size }, 'peers known at start');
      return;
    }
    const before = factsBySubnet(previous);
    const joined: string[] = [];
    const moved: string[] = [];
    const left: string[] = [];
    for (const [subnet, f] of now) {
      const b = before.get(subnet);
      if (!b) joined.push(subnet);
      else if (b.publicIp !== f.publicIp || b.backendData !== f.backendData) moved.push(subnet);
    }
    for (const subnet of before.keys()) if (!now.has(subnet)) left.push(subnet);
    this.report('joined', joined, now, 'peer joined', now.size);
    this.report('changed', moved, now, 'peer changed its public IP or backend data', now.size);
    this.report('left', left, before, 'peer left', now.size);
  }

  /** One lease event's changes (src/backends/plan-index.ts): O(change). `peers`: how many now. */
  apply(d: { joined: readonly Lease[]; left: readonly Lease[]; changed: readonly Lease[] }, peers: number): void {
    if (!this.started) return;
    const joined = factsBySubnet(d.joined);
    const changed = factsBySubnet(d.changed);
    const left = factsBySubnet(d.left);
    this.report('joined', [...joined.keys()], joined, 'peer joined', peers);
    this.report('changed', [...changed.keys()], changed, 'peer changed its public IP or backend data', peers);
    this.report('left', [...left.keys()], left, 'peer left', peers);
  }

  private report(what: string, subnets: string[], facts: Map<string, PeerFacts>, msg: string, peers: number): void {
    if (subnets.length === 0) return;
    if (subnets.length <= EACH_UP_TO) {
      for (const subnet of subnets) this.log.info({ subnet, ...facts.get(subnet) }, msg);
      return;
    }
    this.log.info({ count: subnets.length, examples: subnets.slice(0, 5), peers }, `${subnets.length} peers ${what}`);
  }
}

function factsBySubnet(peers: Iterable<Lease>): Map<string, PeerFacts> {
  const out = new Map<string, PeerFacts>();
  for (const p of peers) out.set(formatPrefix4(p.subnet), factsOf(p));
  return out;
}
