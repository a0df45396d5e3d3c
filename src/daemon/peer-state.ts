// The peers as twilld knows them: every lease key's value as etcd has it (the one copy a
// full recompute re-decodes from, since a new own lease or config re-judges every value) and,
// once a full recompute has run, the decoded leases and their entries in a PlanIndex that
// each later event updates on its own (src/backends/plan-index.ts). Pure: decoding and its
// warnings come from the caller.
import { PlanIndex, type PlanDelta } from '../backends/plan-index';
import type { PlanInput } from '../backends/plan';
import type { Backend } from '../backends/types';
import type { Lease } from '../subnet/lease';

export interface PeerJudge<D> {
  backend: Backend<D>;
  input: PlanInput<D>;
  /** The lease a key's value holds, or null when it is invalid (the caller warns). */
  decode(key: string, value: string): Lease<D> | null;
}

export class PeerState<D = unknown> {
  private readonly raw = new Map<string, string>();
  private judge: PeerJudge<D> | undefined;
  private built: PlanIndex<D> | undefined;

  /** The index of the last full recompute, kept current by `apply`; undefined until one ran (or after `replaceAll`). */
  get index(): PlanIndex<D> | undefined {
    return this.built;
  }

  get size(): number {
    return this.raw.size;
  }

  /** A full listing: every value replaced; the next use needs a full recompute. */
  replaceAll(entries: ReadonlyMap<string, string>): void {
    this.raw.clear();
    for (const [k, v] of entries) this.raw.set(k, v);
    this.built = undefined;
  }

  /** Every value decoded and judged afresh (config, own lease, underlay or reachability changed; a re-list; the periodic resync). */
  rebuild(judge: PeerJudge<D>): PlanIndex<D> {
    this.judge = judge;
    const leases: Array<[string, Lease<D>]> = [];
    for (const [key, value] of this.raw) {
      const lease = judge.decode(key, value);
      if (lease) leases.push([key, lease]);
    }
    return (this.built = PlanIndex.build(judge.backend, judge.input, leases));
  }

  /**
   * One etcd event. With an index: only this key is decoded and re-planned (with the peers it
   * can affect) and the change comes back. Without one, or for a value that did not change:
   * undefined (the caller recomputes fully when it has an index to build).
   */
  apply(key: string, value: string | undefined): PlanDelta<D> | undefined {
    if (value !== undefined && this.raw.get(key) === value) return undefined;
    if (value === undefined) {
      if (!this.raw.delete(key)) return undefined;
    } else this.raw.set(key, value);
    if (!this.built || !this.judge) return undefined;
    return this.built.set(key, value === undefined ? null : this.judge.decode(key, value));
  }
}
