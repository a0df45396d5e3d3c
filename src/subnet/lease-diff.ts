// What changed between two snapshots of the remote leases (pure).
//
// Both maps are keyed by the formatted subnet ("10.244.7.0/24"), so a host that re-leases the
// same subnet with new BackendData (a VTEP MAC) or underlay IP shows up as `changed` (the dataplane must
// replace its neighbour/FDB entries), not as a remove followed by an add. Results are sorted
// by subnet address so logs and tests are deterministic.
import { leaseEquals, type BackendDataCodec, type Lease } from './lease';

export interface LeaseDiff<D = unknown> {
  added: Array<Lease<D>>;
  removed: Array<Lease<D>>;
  changed: Array<{ before: Lease<D>; after: Lease<D> }>;
}

const bySubnet = (a: Lease<unknown>, b: Lease<unknown>): number => a.subnet.ip - b.subnet.ip || a.subnet.len - b.subnet.len;

export function diffLeases<D>(prev: ReadonlyMap<string, Lease<D>>, next: ReadonlyMap<string, Lease<D>>, codec: BackendDataCodec<D>): LeaseDiff<D> {
  const added: Array<Lease<D>> = [];
  const removed: Array<Lease<D>> = [];
  const changed: Array<{ before: Lease<D>; after: Lease<D> }> = [];
  for (const [key, after] of next) {
    const before = prev.get(key);
    if (!before) added.push(after);
    else if (!leaseEquals(before, after, codec)) changed.push({ before, after });
  }
  for (const [key, before] of prev) {
    if (!next.has(key)) removed.push(before);
  }
  added.sort(bySubnet);
  removed.sort(bySubnet);
  changed.sort((a, b) => bySubnet(a.after, b.after));
  return { added, removed, changed };
}

export function isEmptyDiff(d: LeaseDiff<unknown>): boolean {
  return d.added.length === 0 && d.removed.length === 0 && d.changed.length === 0;
}
