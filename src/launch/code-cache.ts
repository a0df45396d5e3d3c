// Running a bundled program (one CommonJS function embedded as a string by scripts/bundle-*.mjs)
// through V8's code cache. Shared by the CNI plugin's launcher (src/cni/launcher.ts) and the
// daemon's (src/daemon/launcher.ts).
//
// Why: Node 20 has no module compile cache (module.enableCompileCache is Node 22+), so every
// start compiles the bundle's functions from scratch. Here the source is compiled with
// vm.Script and the cachedData an earlier run saved; a run without a usable cache saves one
// once it has compiled what it runs (the caller says when: at exit, or from a hook).
//
// Trust: a code cache is executable bytecode and these programs run as root. It is only read
// from, and written to, a directory owned by us and writable by nobody else (created 0700).
// Any doubt (foreign owner, group/world-writable, not a regular file, rejected by V8: another
// Node version, flags or build) means compiling normally, never failing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { writeFileAtomicSync } from '../base/atomic-write';

/** The cache directory if it exists (or can be created) and only we can write it. */
export function trustedDir(dir: string): boolean {
  try {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      st = fs.lstatSync(dir);
    }
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** The cache file's bytes if it is a regular file we own that nobody else can write. */
export function readTrusted(file: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) return undefined;
    return fs.readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Best effort, not durable: a cache that cannot be written only costs the next run its speed-up. */
function writeAtomic(file: string, data: Buffer): void {
  try {
    writeFileAtomicSync(file, data, { mode: 0o600, durable: false });
  } catch {
    // see above
  }
}

export type CacheUse = 'off' | 'none' | 'used' | 'rejected';

/**
 * The launcher and the bundle it runs are separate module graphs (the bundle carries its own
 * copy of this file), so a launcher offers its save function through a global symbol and the
 * program asks for it when it has compiled what matters (the daemon: once ready).
 */
const SAVE_NOW = Symbol.for('twill.codeCache.saveNow');

/** Program side: save the code cache now, if the launcher wants one (else nothing). */
export function saveCodeCacheNow(): void {
  const save = (globalThis as Record<symbol, unknown>)[SAVE_NOW];
  if (typeof save === 'function') (save as () => void)();
}

export interface CachedRun {
  /** The bundle: a CommonJS function expression `(exports, require, module, __filename, __dirname) => …`. */
  payload: string;
  /** Where the bundle runs from (for stack traces and __dirname). */
  filename: string;
  /** Cache directory; "" means no caching. */
  dir: string;
  /** File name inside `dir` for this build (and whatever else must match, e.g. the command). */
  name: string;
  /**
   * Also save when the program calls saveCodeCacheNow() (not only at exit, which always saves
   * a fresh cache if none was saved before).
   */
  saveOnRequest?: boolean;
}

/** Compiles and runs the bundle, with the cache when there is a good one. */
export function runWithCodeCache(r: CachedRun): CacheUse {
  const file = r.dir !== '' && trustedDir(r.dir) ? path.join(r.dir, r.name) : undefined;
  const cachedData = file ? readTrusted(file) : undefined;
  const script = new vm.Script(r.payload, { filename: r.filename, ...(cachedData ? { cachedData } : {}) });
  if (file && (!cachedData || script.cachedDataRejected)) {
    let saved = false;
    const save = (): void => {
      if (saved) return;
      saved = true;
      writeAtomic(file, script.createCachedData());
    };
    // At exit at the latest, so the cache holds at least what this run compiled; the program's
    // output is written by then.
    process.on('exit', save);
    if (r.saveOnRequest) (globalThis as Record<symbol, unknown>)[SAVE_NOW] = save;
  }
  const use: CacheUse = !file ? 'off' : !cachedData ? 'none' : script.cachedDataRejected ? 'rejected' : 'used';
  const mod = { exports: {} };
  (script.runInThisContext() as (e: object, q: NodeRequire, m: object, f: string, d: string) => void)(mod.exports, require, mod, r.filename, path.dirname(r.filename));
  return use;
}
