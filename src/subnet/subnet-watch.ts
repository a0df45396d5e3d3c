// Watching `<prefix>/subnets/`: every put and delete goes to the handler (and our own key's to
// the lease keeper, so a deleted or rewritten key is checked at once).
//
// - Watching from a compacted revision (also after an outage that spanned a compaction) makes
//   etcd3 emit 'error' "Watcher canceled" with an empty reason, and the watcher is dead: we
//   re-list, hand the handler a full snapshot (resync) and watch again from the new revision.
// - etcd3 re-throws exceptions from event listeners on a later tick (process crash), and an
//   EventEmitter 'error' without a listener throws: every listener here catches, every
//   watcher has an 'error' listener, and every promise started from a timer is caught.
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { RegistryLogger } from './etcd-client';
import { etcdError } from './errors';
import { subnetsPrefix } from './lease';
import type { EmitRegistryEvent, SubnetListing, SubnetWatchHandler } from './registry-types';

const WATCH_BACKOFF_MIN_MS = 100;
const WATCH_BACKOFF_MAX_MS = 5_000;
const CANCEL_TIMEOUT_MS = 1_000;

export function nextRevision(rev: string): string {
  return (BigInt(rev) + 1n).toString();
}

function kvString(kv: IKeyValue): { key: string; value: string } {
  return { key: kv.key.toString('utf8'), value: kv.value.toString('utf8') };
}

interface WatchState {
  handler: SubnetWatchHandler;
  watcher: Watcher | null;
  failures: number;
  timer: NodeJS.Timeout | null;
}

/** What the watch needs from the registry it belongs to. */
export interface SubnetWatchDeps {
  client: Etcd3;
  prefix: string;
  log: RegistryLogger;
  isClosed(): boolean;
  emit: EmitRegistryEvent;
  listSubnets(): Promise<SubnetListing>;
  /** Our lease key, if any (see LeaseKeeper.ownKey). */
  ownKey(): string | null;
  onOwnKeyEvent(key: string, value: string | null): void;
}

export class SubnetWatch {
  private state: WatchState | null = null;

  constructor(private readonly d: SubnetWatchDeps) {}

  /**
   * Streams changes after `fromRevision` (the revision of the list the caller built its state
   * from). When the watch cannot continue (compaction), the handler gets a fresh full snapshot
   * via resync() and the watch resumes after it. Replaces any previous watch.
   */
  start(fromRevision: string, handler: SubnetWatchHandler): void {
    const start = nextRevision(fromRevision);
    void this.stop();
    const state: WatchState = { handler, watcher: null, failures: 0, timer: null };
    this.state = state;
    this.startWatcher(state, start);
  }

  private active(state: WatchState): boolean {
    return !this.d.isClosed() && this.state === state;
  }

  private startWatcher(state: WatchState, startRevision: string): void {
    if (!this.active(state)) return;
    const { client, prefix, log } = this.d;
    const watcher = client.watch().prefix(subnetsPrefix(prefix)).startRevision(startRevision).watcher();
    state.watcher = watcher;
    const live = (): boolean => this.active(state) && state.watcher === watcher;
    log.debug({ startRevision }, 'watching subnets');

    watcher.on('connected', () => {
      if (live()) state.failures = 0;
    });
    watcher.on('put', (kv: IKeyValue) => {
      if (!live()) return;
      const { key, value } = kvString(kv);
      this.callHandler('put', () => state.handler.put(key, value));
      this.d.onOwnKeyEvent(key, value);
    });
    watcher.on('delete', (kv: IKeyValue) => {
      if (!live()) return;
      const { key } = kvString(kv);
      this.callHandler('delete', () => state.handler.delete(key));
      this.d.onOwnKeyEvent(key, null);
    });
    watcher.on('disconnected', (err: Error) => {
      // etcd3 reconnects by itself and replays from the last revision it saw.
      if (live()) this.d.emit('watch-error', etcdError('watch (disconnected)', err), 'disconnected');
    });
    watcher.on('error', (err: Error) => {
      if (!live()) return;
      // Typically a compacted start revision; the watcher is dead either way.
      state.watcher = null;
      void this.detachWatcher(watcher);
      const e = etcdError('watch (canceled)', err);
      log.warn({ err: e }, 'subnet watch canceled by etcd, re-listing');
      this.d.emit('watch-error', e, 'canceled');
      this.scheduleRelist(state);
    });
  }

  private scheduleRelist(state: WatchState): void {
    if (!this.active(state)) return;
    const delay = state.failures === 0 ? 0 : Math.min(WATCH_BACKOFF_MAX_MS, WATCH_BACKOFF_MIN_MS * 2 ** (state.failures - 1));
    state.failures++;
    state.timer = setTimeout(() => {
      state.timer = null;
      this.relist(state).catch((err: unknown) => this.d.log.error({ err }, 'subnet re-list failed unexpectedly'));
    }, delay);
    state.timer.unref();
  }

  private async relist(state: WatchState): Promise<void> {
    if (!this.active(state)) return;
    let snapshot: SubnetListing;
    try {
      snapshot = await this.d.listSubnets();
    } catch (err) {
      if (!this.active(state)) return;
      const e = etcdError('re-list subnets', err);
      this.d.log.warn({ err: e }, 'subnet re-list failed, retrying');
      this.d.emit('watch-error', e, 'relist');
      this.scheduleRelist(state);
      return;
    }
    if (!this.active(state)) return;
    this.d.log.info({ revision: snapshot.revision, count: snapshot.entries.size }, 'subnet watch resynced from a full list');
    this.callHandler('resync', () => state.handler.resync(snapshot.entries, snapshot.revision));
    for (const [key, value] of snapshot.entries) this.d.onOwnKeyEvent(key, value);
    const own = this.d.ownKey();
    if (own !== null && !snapshot.entries.has(own)) this.d.onOwnKeyEvent(own, null);
    this.startWatcher(state, nextRevision(snapshot.revision));
  }

  private callHandler(what: string, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.d.log.error({ err, event: what }, 'subnet watch handler threw');
    }
  }

  /** Cancels a watcher without waiting long and without letting its late events throw. */
  private detachWatcher(watcher: Watcher): Promise<void> {
    watcher.removeAllListeners();
    watcher.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CANCEL_TIMEOUT_MS);
      timer.unref();
    });
    const cancel = watcher.cancel().catch((err: unknown) => this.d.log.debug({ err }, 'watch cancel failed'));
    return Promise.race([cancel, timeout]).finally(() => clearTimeout(timer));
  }

  /** Stops the current watch, if any (resolves once its watcher is cancelled, at most ~1 s). */
  stop(): Promise<void> {
    const state = this.state;
    this.state = null;
    if (!state) return Promise.resolve();
    if (state.timer) clearTimeout(state.timer);
    const w = state.watcher;
    state.watcher = null;
    return w ? this.detachWatcher(w) : Promise.resolve();
  }
}
