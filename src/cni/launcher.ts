// Entry of the bundled plugin (dist/src/cmd/twill-cni.js, built by scripts/bundle-cni.mjs):
// runs the plugin's bundled source through V8's code cache.
//
// Why: a runtime starts the plugin once per pod and command, so every call pays for compiling
// the plugin's functions from scratch. Node 20 has no module compile cache
// (module.enableCompileCache is Node 22+), so this does it by hand: the bundle script embeds the
// plugin's source here as a string, it is compiled with vm.Script and the cachedData saved by an
// earlier run of the same command, and a run without a usable cache writes one at exit (after
// execution, so it holds the functions that command actually compiled). Measured: ~8 ms off a
// ~55 ms ADD.
//
// Trust: a code cache is executable bytecode and this runs as root. It is only read from, and
// written to, a directory owned by us and writable by nobody else (default
// /var/cache/twill/cni, created 0700; TWILL_CNI_CODE_CACHE overrides it, "" disables caching).
// Any doubt (foreign owner, group/world-writable, not a regular file, rejected by V8: another
// Node version, flags or build) means compiling normally, never failing the call.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

declare const __TWILL_PAYLOAD__: string | undefined;
declare const __TWILL_BUILD_ID__: string | undefined;

export const DEFAULT_CACHE_DIR = '/var/cache/twill/cni';

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

function writeAtomic(file: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, data, { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never created
    }
  }
}

export function cacheFile(dir: string, buildId: string, command: string): string {
  const cmd = command.replace(/[^A-Z]/g, '').slice(0, 8) || 'NONE';
  return path.join(dir, `twill-cni-${buildId}-${process.version}-${process.arch}-${cmd}.v8cache`);
}

export type CacheUse = 'off' | 'none' | 'used' | 'rejected';

/** Compiles and runs the wrapped plugin source (a CommonJS function expression). */
export function launch(payload: string, buildId: string, filename: string, env = process.env): CacheUse {
  const dir = env['TWILL_CNI_CODE_CACHE'] ?? DEFAULT_CACHE_DIR;
  const file = dir !== '' && trustedDir(dir) ? cacheFile(dir, buildId, env['CNI_COMMAND'] ?? '') : undefined;
  const cachedData = file ? readTrusted(file) : undefined;
  const script = new vm.Script(payload, { filename, ...(cachedData ? { cachedData } : {}) });
  if (file && (!cachedData || script.cachedDataRejected)) {
    // On exit, so the cache includes what this command compiled; the plugin's output is
    // already written by then, and a failure here only costs the next run its speed-up.
    process.on('exit', () => writeAtomic(file, script.createCachedData()));
  }
  const use: CacheUse = !file ? 'off' : !cachedData ? 'none' : script.cachedDataRejected ? 'rejected' : 'used';
  const mod = { exports: {} };
  (script.runInThisContext() as (e: object, r: NodeRequire, m: object, f: string, d: string) => void)(mod.exports, require, mod, filename, path.dirname(filename));
  return use;
}

if (typeof __TWILL_PAYLOAD__ === 'string' && typeof __TWILL_BUILD_ID__ === 'string') {
  launch(__TWILL_PAYLOAD__, __TWILL_BUILD_ID__, __filename);
}
