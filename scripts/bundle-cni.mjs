#!/usr/bin/env node
// Bundles the `twill` CNI plugin into one executable file, dist/src/cmd/twill-cni.js.
//
// Why: a runtime starts the plugin once per pod and command, so start-up is most of its
// latency. Two builds:
//  1. the plugin (src/cmd/twill.ts) as one CommonJS function; three Node built-ins that shared
//     modules import at top level are made lazy, because loading them costs more than the
//     plugin's netlink work (measured, Node 20): node:fs/promises ~7-12 ms, node:crypto ~6 ms
//     (OpenSSL init), node:net ~1.6 ms. The plugin's paths never use them; anything that does
//     loads them on first use. node:net's isIPv4 (subnet file validation) gets Node's own
//     pattern so it never loads the module.
//  2. the launcher (src/cni/launcher.ts) with (1) embedded as a string, which it compiles with
//     V8's code cache (see launcher.ts).
// The output sits next to dist/src/cmd/twill.js on purpose: src/netns/native.ts finds the
// native addon relative to its own directory depth, which stays the same for this file.
// esbuild compiles the TypeScript itself; `tsc` is not needed first.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outIdx = process.argv.indexOf('--out');
const outfile = outIdx > 0 ? path.resolve(process.argv[outIdx + 1]) : path.join(root, 'dist', 'src', 'cmd', 'twill-cni.js');
const require = createRequire(import.meta.url);

// Node's own isIPv4 pattern (lib/internal/net.js), so validation is identical.
const V4_SEG = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const OVERRIDES = {
  'node:net': { isIPv4: `(s) => typeof s === 'string' && /^(?:${V4_SEG}\\.){3}${V4_SEG}$/.test(s)` },
};

function lazyShim(spec) {
  const own = OVERRIDES[spec] ?? {};
  const keys = Object.keys(require(spec)).filter((k) => k !== 'default' && k !== '__esModule' && !(k in own));
  return [
    'let real;',
    `const load = () => real || (real = require(${JSON.stringify(spec)}));`,
    `for (const k of ${JSON.stringify(keys)}) Object.defineProperty(exports, k, { enumerable: true, get: () => load()[k] });`,
    ...Object.entries(own).map(([k, v]) => `exports.${k} = ${v};`),
  ].join('\n');
}

const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    // The shim's own require() of the module must reach Node, not the shim again.
    b.onResolve({ filter: /^node:(fs\/promises|crypto|net)$/ }, (args) =>
      args.namespace === 'lazy-builtin' ? { path: args.path, external: true } : { path: args.path, namespace: 'lazy-builtin' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: lazyShim(args.path), loader: 'js' }));
  },
};

const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', minify: true, legalComments: 'none', logLevel: 'warning' };

const plugin = await build({ ...common, entryPoints: [path.join(root, 'src', 'cmd', 'twill.ts')], write: false, outfile: 'plugin.js', plugins: [lazyBuiltins] });
const body = plugin.outputFiles[0].text.replace(/^#!.*\n/, '');
const payload = `(function (exports, require, module, __filename, __dirname) {${body}\n})`;
const buildId = createHash('sha256').update(payload).digest('hex').slice(0, 12);
// --payload FILE: also write the wrapped plugin source alone (for profiling the launcher).
const payloadIdx = process.argv.indexOf('--payload');
if (payloadIdx > 0) writeFileSync(path.resolve(process.argv[payloadIdx + 1]), payload);

await build({
  ...common,
  entryPoints: [path.join(root, 'src', 'cni', 'launcher.ts')],
  outfile,
  banner: { js: '#!/usr/bin/env node' },
  define: { __TWILL_PAYLOAD__: JSON.stringify(payload), __TWILL_BUILD_ID__: JSON.stringify(buildId) },
});
chmodSync(outfile, 0o755);
console.log(`${path.relative(process.cwd(), outfile)}: ${(statSync(outfile).size / 1024).toFixed(1)} KiB, build ${buildId}`);
