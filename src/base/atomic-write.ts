// Replacing a file so that a reader sees the old contents or the complete new ones, never a
// torn or half-written file: the one helper for the subnet file, the VTEP MAC, the installed
// files, lab.json, the CNI plugin's IPAM hint and the launchers' code caches.
//
// How, always: write a temporary file in the same directory (rename(2) is atomic only within
// one filesystem), created with O_EXCL under a name no other writer picks (pid + random; a
// stale temp file is never reused or followed), set its mode explicitly (umask-independent),
// then rename it over the target. On any failure the temporary file is removed and the target
// is untouched.
//
// `durable: true` adds what surviving a crash or power loss needs: fsync the file before the
// rename (else a crash can leave the new name pointing at an empty file), and fsync the
// directory after it (else the rename itself can be lost). Use it where the file is state a
// restart depends on: the VTEP MAC (peers have it programmed), the subnet file (the CNI
// plugin's hand-off), the installed programs and settings. Leave it off where losing the newest
// write costs nothing and latency matters: the IPAM hint (a CNI ADD's hot path; a lost hint only
// moves where the next search starts), code caches (rebuilt by the next run), and the lab's
// lab.json under /run (tmpfs: gone at reboot anyway). A directory fsync that the filesystem
// refuses is ignored: the data is already in the renamed file.
//
// Only node:fs is imported here, and node:fs/promises only inside the async function: the CNI
// plugin's launcher uses the sync form, and loading fs/promises costs it milliseconds.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface AtomicWriteOptions {
  /** The file's permission bits, set exactly (not filtered by the umask). */
  mode: number;
  /** fsync the file before and the directory after the rename (see above). */
  durable: boolean;
  /** Create missing parent directories (mode 0755) first. */
  mkdirs?: boolean;
}

/** A temporary name beside `file`; hidden, and unique per process and call. */
export function tempPathFor(file: string): string {
  const rand = Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0');
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${rand}.tmp`);
}

export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions): Promise<void> {
  const fsp = fs.promises;
  const dir = path.dirname(file);
  if (opts.mkdirs) await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = tempPathFor(file);
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', opts.mode);
    await fh.writeFile(data);
    await fh.chmod(opts.mode);
    if (opts.durable) await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  if (opts.durable) {
    let dh: fs.promises.FileHandle | undefined;
    try {
      dh = await fsp.open(dir, 'r');
      await dh.sync();
    } catch {
      // Not every filesystem allows fsync on a directory (see above).
    } finally {
      await dh?.close().catch(() => undefined);
    }
  }
}

export function writeFileAtomicSync(file: string, data: string | Uint8Array, opts: AtomicWriteOptions): void {
  const dir = path.dirname(file);
  if (opts.mkdirs) fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = tempPathFor(file);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', opts.mode);
    fs.writeFileSync(fd, data);
    fs.fchmodSync(fd, opts.mode);
    if (opts.durable) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    }
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  if (opts.durable) {
    let dfd: number | undefined;
    try {
      dfd = fs.openSync(dir, 'r');
      fs.fsyncSync(dfd);
    } catch {
      // Not every filesystem allows fsync on a directory (see above).
    } finally {
      if (dfd !== undefined) fs.closeSync(dfd);
    }
  }
}
