// The peers as twilld knows them: every lease key's value as etcd has it and, once a full
// recompute has run, the decoded leases and their entries in a PlanIndex that each later event
// updates on its own (src/backends/plan-index.ts). Pure: decoding and its warnings come from
// the caller.
//
// Memory (issue 13): a value is kept as text only while no decoded lease stands for it — until
// `compact` runs after a full recompute, and afterwards for a value that did not decode (a bad
// one, another backend's, one overlapping our subnet) or is not in the canonical form twill and
// flannel write.
// Any other value is exactly its lease's encoding (encodeLeaseValue), so the index's lease is its
// only copy: a full recompute (a new own lease re-judges every value) decodes that encoding
// afresh, which is the same text. At 10,000 peers that is 10,000 strings of ~120 bytes (and the
// map holding them) fewer.
import { PlanIndex, type PlanDelta } from '../backends/plan-index';
import type { PlanInput } from '../backends/plan';
import type { Backend } from '../backends/types';
import { encodeLeaseValue, type Lease } from '../subnet/lease';

export interface PeerJudge<D> {
  backend: Backend<D>;
  input: PlanInput<D>;
  /** The lease a key's value holds, or null when it is invalid (the caller warns). */
  decode(key: string, value: string): Lease<D> | null;
}

export class PeerState<D = unknown> {
  /** Values no decoded lease stands for (see the note at the top). */
  private readonly raw = new Map<string, string>();
  private judge: PeerJudge<D> | undefined;
  private built: PlanIndex<D> | undefined;

  /** The index of the last full recompute, kept current by `apply`; undefined until one ran (or after `replaceAll`). */
  get index(): PlanIndex<D> | undefined {
    return this.built;
  }

  /** A full listing: every value replaced; the next use needs a full recompute. */
  replaceAll(entries: ReadonlyMap<string, string>): void {
    this.raw.clear();
    for (const [k, v] of entries) this.raw.set(k, v);
    this.built = undefined;
  }

  /** Every value decoded and judged afresh (config, own lease, underlay or reachability changed; a re-list; the periodic resync). */
  rebuild(judge: PeerJudge<D>): PlanIndex<D> {
    const prev = this.built;
    const prevCodec = this.judge?.backend.codec;
    this.judge = judge;
    const leases: Array<[string, Lease<D>]> = [];
    for (const [key, value] of this.raw) {
      const lease = judge.decode(key, value);
      if (lease) leases.push([key, lease]);
    }
    if (prev && prevCodec) {
      for (const [key, old] of prev.leases()) {
        if (this.raw.has(key)) continue; // held as text: decoded above
        const value = encodeLeaseValue(old, prevCodec);
        const lease = judge.decode(key, value);
        if (lease) leases.push([key, lease]);
        else this.raw.set(key, value); // invalid now (e.g. it overlaps a new own lease): kept as text
      }
    }
    return (this.built = PlanIndex.build(judge.backend, judge.input, leases));
  }

  /**
   * The first way the index differs from what `rebuild(judge)` would make now (undefined:
   * none), without making it: every value decoded again and compared with the lease held, then
   * the index planned and judged afresh against itself (PlanIndex.verify). The daemon's
   * periodic safety net under the per-event path; a difference is a bug, and it rebuilds.
   */
  verify(judge: PeerJudge<D>): string | undefined {
    const built = this.built;
    if (!built) return 'no index';
    const codec = judge.backend.codec;
    const same = (a: Lease<D> | null, b: Lease<D> | undefined): boolean => (a === null ? b === undefined : b !== undefined && encodeLeaseValue(a, codec) === encodeLeaseValue(b, codec));
    for (const [key, value] of this.raw) if (!same(judge.decode(key, value), built.lease(key))) return `lease ${key}`;
    for (const [key, held] of built.leases()) if (!this.raw.has(key) && !same(judge.decode(key, encodeLeaseValue(held, codec)), held)) return `lease ${key}`;
    return built.verify(judge.backend, judge.input);
  }

  /**
   * Drops the text of every value its decoded lease stands for. Separate from `rebuild` so that
   * a cold start programs its peers first (encoding 10,000 leases to compare takes ~15 ms):
   * the daemon runs it once a burst is over (src/daemon/burst-collector.ts).
   */
  compact(): void {
    const built = this.built;
    const codec = this.judge?.backend.codec;
    if (!built || !codec) return;
    for (const [key, value] of this.raw) {
      const lease = built.lease(key);
      if (lease && encodeLeaseValue(lease, codec) === value) this.raw.delete(key);
    }
  }

  /**
   * One etcd event. With an index: only this key is decoded and re-planned (with the peers it
   * can affect) and the change comes back. Without one, or for a value that did not change:
   * undefined (the caller recomputes fully when it has an index to build).
   */
  apply(key: string, value: string | undefined): PlanDelta<D> | undefined {
    const built = this.built;
    const judge = this.judge;
    if (!built || !judge) {
      if (value === undefined) this.raw.delete(key);
      else this.raw.set(key, value);
      return undefined;
    }
    const codec = judge.backend.codec;
    let current = this.raw.get(key);
    if (current === undefined) {
      const held = built.lease(key);
      if (held) current = encodeLeaseValue(held, codec);
    }
    if (value === current) return undefined; // the same value again, or a delete of nothing
    if (value === undefined) {
      this.raw.delete(key);
      return built.set(key, null);
    }
    const lease = judge.decode(key, value);
    if (lease && encodeLeaseValue(lease, codec) === value) this.raw.delete(key);
    else this.raw.set(key, value);
    return built.set(key, lease);
  }
}
