// The subnet file converged like kernel state: twilld owns /run/twill/subnet.env the way it owns
// its routes. Whatever the file holds on disk is compared with what it should hold, and a
// missing or different file is rewritten.
//
// Why: /run is a tmpfs that cleaners (systemd-tmpfiles, an admin's `rm`) touch, and every CNI
// ADD fails with code 11 while the file is missing — yet readiness said "ready" because it
// remembered having written the file once (issue 16). Now `inSync` is what the disk held at the
// last look, and readiness reads it.
//
// How: an inotify watch (fs.watch) on the file's directory makes a repair take milliseconds;
// a periodic check is the net for what a watch misses (the directory itself removed, a watch
// that could not be set up). Checks are serialised; a burst of events costs one read.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { writeSubnetFile } from '../subnet/subnet-file';
import type { Logger } from '../observe/log';
import { coalesced } from './coalesce';
import { TwillError } from '../base/twill-error';

export type SubnetFileDrift = 'missing' | 'different';

export interface SubnetFileKeeperOptions {
  /** Period of the safety-net check, ms. */
  checkIntervalMs: number;
  /** Called whenever `inSync` changes. */
  onChange?: (inSync: boolean) => void;
  /** Called after a drifted file was rewritten. */
  onRepaired?: (drift: SubnetFileDrift) => void;
  /** Called when a write failed (it is retried by the next check). */
  onWriteFailed?: (err: unknown) => void;
  /** The write itself; tests slow it down to look at the state in between. */
  write?: (file: string, text: string) => Promise<void>;
}

export class SubnetFileKeeper {
  private desired: string | undefined;
  private synced = false;
  private watcher: fs.FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastError: unknown;
  private readonly write: (file: string, text: string) => Promise<void>;

  constructor(
    readonly file: string,
    private readonly log: Logger,
    private readonly opts: SubnetFileKeeperOptions,
  ) {
    this.write = opts.write ?? writeSubnetFile;
  }

  /** What the file must hold (undefined until the first set). */
  get text(): string | undefined {
    return this.desired;
  }

  /** True when the file on disk held the desired text at the last look. */
  get inSync(): boolean {
    return this.synced;
  }

  /**
   * What the file must hold from now on. Resolves once the disk holds it; rejects when the
   * write failed (it is retried by the next check).
   */
  async set(text: string): Promise<void> {
    if (text === this.desired && this.synced) return;
    this.desired = text;
    this.setSynced(false);
    await this.check();
    if (!this.synced) throw new SubnetFileKeeperError(this.file, this.lastError);
    this.ensureWatching();
    if (!this.timer && !this.stopped) {
      this.timer = setInterval(() => void this.check(), this.opts.checkIntervalMs);
      this.timer.unref();
    }
  }

  /** Compares the disk with the desired text and rewrites it when they differ. Serialised. */
  readonly check = coalesced(() => this.checkOnce(), () => this.stopped);

  private async checkOnce(): Promise<void> {
    const want = this.desired;
    if (want === undefined || this.stopped) return;
    let have: string | null;
    try {
      have = await fsp.readFile(this.file, 'utf8');
    } catch (err) {
      have = (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : '';
    }
    if (have === want) {
      this.setSynced(true);
      return;
    }
    const drift: SubnetFileDrift = have === null ? 'missing' : 'different';
    const wasSynced = this.synced;
    this.setSynced(false);
    try {
      await this.write(this.file, want);
    } catch (err) {
      // Logged once per distinct error, not once per check.
      if (errKey(err) !== errKey(this.lastError)) this.log.error({ err: (err as Error).message, path: this.file }, 'cannot write subnet file; retrying');
      this.lastError = err;
      this.opts.onWriteFailed?.(err);
      return;
    }
    this.lastError = undefined;
    if (this.desired !== want) return; // superseded meanwhile: the next round writes that
    this.setSynced(true);
    if (drift === 'missing') this.rewatch(); // the directory may be a new one
    else this.ensureWatching();
    if (wasSynced) {
      this.log.warn({ path: this.file, drift }, 'subnet file repaired');
      this.opts.onRepaired?.(drift);
    }
  }

  private setSynced(v: boolean): void {
    if (v === this.synced) return;
    this.synced = v;
    this.opts.onChange?.(v);
  }

  /** An inotify watch on the directory (re-made after the directory was removed and recreated). */
  private ensureWatching(): void {
    if (this.watcher || this.stopped) return;
    const base = path.basename(this.file);
    try {
      const w = fs.watch(path.dirname(this.file), { persistent: false }, (_event, name) => {
        if (name === null || name === base) void this.check();
      });
      w.on('error', () => this.dropWatch(w));
      w.on('close', () => this.dropWatch(w));
      this.watcher = w;
    } catch (err) {
      this.log.debug({ err: (err as Error).message, dir: path.dirname(this.file) }, 'cannot watch the subnet file directory; relying on the periodic check');
    }
  }

  private rewatch(): void {
    const w = this.watcher;
    this.watcher = undefined;
    w?.close();
    this.ensureWatching();
  }

  private dropWatch(w: fs.FSWatcher): void {
    if (this.watcher !== w) return;
    this.watcher = undefined;
    w.close();
    void this.check();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const w = this.watcher;
    this.watcher = undefined;
    w?.close();
  }
}

/** What makes two write failures the same (the message names a random temporary file). */
function errKey(err: unknown): string | undefined {
  return err === undefined ? undefined : String((err as { code?: unknown }).code ?? err);
}

export class SubnetFileKeeperError extends TwillError<'ERR_SUBNET_FILE_WRITE'> {
  constructor(readonly path: string, cause: unknown) {
    super('ERR_SUBNET_FILE_WRITE', `cannot write subnet file ${path}`, { cause });
    this.name = 'SubnetFileKeeperError';
  }
}
