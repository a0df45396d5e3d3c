// Entry of the bundled daemon (dist/src/cmd/twilld-bundle.js, built by scripts/bundle-daemon.mjs):
// runs the daemon's bundled source through V8's code cache (src/launch/code-cache.ts).
//
// Why: a cold start is measured end to end (issue 2), and compiling the bundle's functions
// from scratch is a good part of the daemon's start-up. A start without a usable cache saves
// one as soon as the daemon is first ready (it has then compiled its whole cold-start path),
// or at exit if it never got there.
// Cache directory: /var/cache/twill/twilld (the unit's CacheDirectory=) of the install root the
// daemon runs from (<root>/var/cache/twill/twilld under --root, e.g. the lab's: src/install/root-of.ts);
// TWILL_DAEMON_CODE_CACHE overrides it, "" disables caching.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runWithCodeCache, type CacheUse } from '../launch/code-cache';
import { underOwnRoot } from '../install/root-of';

declare const __TWILLD_PAYLOAD_FILE__: string | undefined;
declare const __TWILLD_BUILD_ID__: string | undefined;

export const DAEMON_CACHE_REL = 'var/cache/twill/twilld';

export function launchDaemon(payload: string, buildId: string, filename: string, env = process.env): CacheUse {
  return runWithCodeCache({
    payload,
    filename,
    dir: env['TWILL_DAEMON_CODE_CACHE'] ?? underOwnRoot(path.dirname(filename), DAEMON_CACHE_REL),
    name: `twilld-${buildId}-${process.version}-${process.arch}.v8cache`,
    saveOnRequest: true, // daemon.ts asks once it is first ready
  });
}

if (typeof __TWILLD_PAYLOAD_FILE__ === 'string' && typeof __TWILLD_BUILD_ID__ === 'string') {
  // Beside this file (see scripts/bundle-daemon.mjs: a string literal here was slower to load).
  const file = path.join(__dirname, __TWILLD_PAYLOAD_FILE__);
  launchDaemon(fs.readFileSync(file, 'utf8'), __TWILLD_BUILD_ID__, file);
}
