// Every patch twill applies to etcd3 (the npm client, pinned in package.json), in one place next
// to its adapter (etcd-client.ts), with the version they were written against and a start-up
// self-check. Two act at run time, on the client the registry creates:
//
// 1. WatchBackoff — etcd3's watch-stream reconnect backoff (its public faultHandling option).
//    The default grows to 30 s, and the client arms that timer — referenced, so it keeps Node
//    running — every time the stream ends, including when we cancel our last watcher or close
//    the client. Ours is capped at 5 s and reports 0 once the registry is closed, so close() lets
//    the process exit at once.
// 2. dedupeWatchReconnects — wraps two private methods of etcd3's WatchManager. It handles a
//    failed watch stream twice (its 'error' and then its 'end'), and each time arms a reconnect
//    timer: while etcd is down every failed attempt spawned two more, so reconnect attempts (and
//    'disconnected' events) doubled every few seconds — over 14,000 in a 60 s outage, found by
//    the fault suite. With the wrapper one failure arms one reconnect.
//
// One acts at build time, in the daemon bundle only: etcd3-schema-patch.ts replaces the way
// etcd3 1.1.2 loads its protobuf schema (lib/connection-pool.js) with a pre-parsed one and a
// fast decoder for Range answers; scripts/bundle-daemon.mjs applies it and its checks fail the
// build when etcd3's source differs.
//
// The self-check (etcd3PatchProblems, run by EtcdRegistry.create and by a unit test) refuses an
// etcd3 of another version or a client whose private shape differs, instead of running with a
// patch silently not applied; the daemon then reports the error and retries, never ready.
import type { Etcd3 } from 'etcd3';

/** The etcd3 release these patches were written against and checked with. */
export const ETCD3_PATCHED_VERSION = '1.1.2';

/** Set by the bundle's schema patch (etcd3-schema-patch.ts) to the version it was built for. */
export const SCHEMA_PATCH_MARK = 'twill.etcd3.schemaPatch';

const WATCH_RECONNECT_MIN_MS = 200;
export const WATCH_RECONNECT_MAX_MS = 5_000;

/** Patch 1 (cockatiel's IBackoff shape, which etcd3's faultHandling.watchBackoff takes). */
export class WatchBackoff {
  constructor(
    private readonly attempt: number,
    private readonly isClosed: () => boolean,
  ) {}

  get duration(): number {
    if (this.isClosed()) return 0;
    const cap = Math.min(WATCH_RECONNECT_MAX_MS, WATCH_RECONNECT_MIN_MS * 2 ** Math.max(0, this.attempt));
    return Math.round(cap / 2 + (Math.random() * cap) / 2);
  }

  next(): WatchBackoff {
    return new WatchBackoff(this.attempt + 1, this.isClosed);
  }
}

/** The parts of etcd3 1.1.2's (private) WatchManager that patch 2 wraps. */
interface WatchManagerInternals {
  handleError(err: Error): void;
  establishStream(): void;
}

function watchManagerOf(client: Etcd3): Partial<WatchManagerInternals> | undefined {
  return (client as unknown as { watchManager?: Partial<WatchManagerInternals> }).watchManager;
}

/** The installed etcd3's version (the bundle carries the package.json it was built with). */
export function installedEtcd3Version(): string {
  return (require('etcd3/package.json') as { version: string }).version;
}

/** What stands in the way of patching `client` (empty: all patches fit). */
export function etcd3PatchProblems(client: Etcd3, version = installedEtcd3Version()): string[] {
  const problems: string[] = [];
  if (version !== ETCD3_PATCHED_VERSION) {
    problems.push(`etcd3 ${version} is installed; twill's patches (src/subnet/etcd3-patches.ts) fit ${ETCD3_PATCHED_VERSION}`);
  }
  const wm = watchManagerOf(client);
  if (!wm || typeof wm.handleError !== 'function' || typeof wm.establishStream !== 'function') {
    problems.push('etcd3 client has no watchManager.handleError/establishStream to wrap');
  }
  const mark = (globalThis as Record<symbol, unknown>)[Symbol.for(SCHEMA_PATCH_MARK)];
  if (mark !== undefined && mark !== ETCD3_PATCHED_VERSION) {
    problems.push(`the bundle's etcd3 schema patch was built for ${String(mark)}, not ${ETCD3_PATCHED_VERSION}`);
  }
  return problems;
}

/**
 * Patch 2. A failure reported while a reconnect is already pending is dropped: the stream is
 * gone and its watchers were told once. The pending reconnect (or a new watcher attaching)
 * calls establishStream(), which re-arms failure handling. Call only on a client that passed
 * etcd3PatchProblems.
 */
export function dedupeWatchReconnects(client: Etcd3): void {
  const wm = watchManagerOf(client) as WatchManagerInternals;
  const handleError = wm.handleError.bind(wm);
  const establishStream = wm.establishStream.bind(wm);
  let reconnectPending = false;
  wm.handleError = (err: Error): void => {
    if (reconnectPending) return;
    reconnectPending = true;
    handleError(err);
  };
  wm.establishStream = (): void => {
    reconnectPending = false;
    establishStream();
  };
}
