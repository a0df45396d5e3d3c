// Entry of the bundled plugin (dist/src/cmd/twill-cni.js, built by scripts/bundle-cni.mjs):
// runs the plugin's bundled source through V8's code cache (src/launch/code-cache.ts).
//
// Why: a runtime starts the Node plugin once per pod and command when no `twill serve` answers
// for it, so every such call pays for compiling the plugin's functions. The cache is per
// command and saved at exit, so it holds the functions that command actually compiled.
// Measured: ~8 ms off a ~55 ms ADD.
// Cache directory: /var/cache/twill/cni of the install root the plugin runs from (under --root:
// <root>/var/cache/twill/cni, src/install/root-of.ts); TWILL_CNI_CODE_CACHE overrides it, ""
// disables caching.
import { runWithCodeCache, type CacheUse } from '../launch/code-cache';
import { underOwnRoot } from '../install/root-of';

declare const __TWILL_PAYLOAD__: string | undefined;
declare const __TWILL_BUILD_ID__: string | undefined;

export const CNI_CACHE_REL = 'var/cache/twill/cni';

/** The cache file name of one build and command. */
export function cacheFileName(buildId: string, command: string): string {
  const cmd = command.replace(/[^A-Z]/g, '').slice(0, 8) || 'NONE';
  return `twill-cni-${buildId}-${process.version}-${process.arch}-${cmd}.v8cache`;
}

export function launch(payload: string, buildId: string, filename: string, env = process.env): CacheUse {
  const dir = env['TWILL_CNI_CODE_CACHE'] ?? underOwnRoot(filename.slice(0, filename.lastIndexOf('/')), CNI_CACHE_REL);
  return runWithCodeCache({ payload, filename, dir, name: cacheFileName(buildId, env['CNI_COMMAND'] ?? '') });
}

if (typeof __TWILL_PAYLOAD__ === 'string' && typeof __TWILL_BUILD_ID__ === 'string') {
  launch(__TWILL_PAYLOAD__, __TWILL_BUILD_ID__, __filename);
}
