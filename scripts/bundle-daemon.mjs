#!/usr/bin/env node
// Bundles the daemon into one file, dist/src/cmd/twilld-bundle.js.
//
// Why: a cold start with 10,000 peers is measured against `ip -batch` (issue 2), and loading
// ~300 CommonJS files (etcd3, @grpc/grpc-js, protobufjs, pino, ours) cost ~0.3 s of it, before
// any work. Two things make the bundle start faster than dist/src/cmd/twilld.js:
//  1. One file: no module resolution, no per-file stat/read/wrap.
//  2. etcd3 parses its .proto files at load (~90 ms). The bundle carries the parsed schema
//     instead: src/subnet/etcd3-schema-patch.ts (with the other etcd3 patches, the version they
//     fit and the checks that fail this build when etcd3 changes) rewrites how etcd3 loads it.
// The launcher (src/daemon/launcher.ts) runs the bundled daemon through V8's code cache.
// The output sits next to dist/src/cmd/twilld.js on purpose: src/netns/native.ts finds the
// native addon relative to its own directory depth, which stays the same for this file.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outIdx = process.argv.indexOf('--out');
const outfile = outIdx > 0 ? path.resolve(process.argv[outIdx + 1]) : path.join(root, 'dist', 'src', 'cmd', 'twilld-bundle.js');

// etcd3's schema loading is replaced in the bundle (see the note at the top). The patch and its
// build-time checks live next to the etcd3 adapter with the other etcd3 patches
// (src/subnet/etcd3-schema-patch.ts); esbuild compiles that file for us here.
async function loadSchemaPatch() {
  const file = path.join(root, 'src', 'subnet', 'etcd3-schema-patch.ts');
  const out = await build({ entryPoints: [file], bundle: true, platform: 'node', format: 'cjs', write: false, external: ['esbuild'], logLevel: 'warning' });
  const mod = { exports: {} };
  new Function('module', 'exports', 'require', out.outputFiles[0].text)(mod, mod.exports, createRequire(file));
  return mod.exports;
}
const { etcd3SchemaPlugin } = await loadSchemaPatch();

const packageJson = {
  name: 'package-json',
  setup(b) {
    // src/cmd/twilld.ts reads the version from ../../../package.json, a path meant for
    // dist/src/cmd: from the source file it is the repository's package.json.
    b.onResolve({ filter: /^\.\.\/\.\.\/\.\.\/package\.json$/ }, () => ({ path: path.join(root, 'package.json') }));
  },
};

// --no-minify: readable function names, e.g. for CPU profiles of the bundled daemon.
const minify = !process.argv.includes('--no-minify');
const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', minify, legalComments: 'none', logLevel: 'warning' };

const daemon = await build({
  ...common,
  entryPoints: [path.join(root, 'src', 'cmd', 'twilld.ts')],
  write: false,
  outfile: 'twilld.js',
  plugins: [packageJson, etcd3SchemaPlugin(root)],
});
const body = daemon.outputFiles[0].text.replace(/^#!.*\n/, '');
const payload = `(function (exports, require, module, __filename, __dirname) {${body}\n})`;
const buildId = createHash('sha256').update(payload).digest('hex').slice(0, 12);

// The payload goes into a file of its own beside the launcher: as an 800 KB string literal
// inside the launcher it cost ~20 ms per start just to scan when the launcher is compiled.
const payloadFile = outfile.replace(/\.js$/, '.payload');
writeFileSync(payloadFile, payload);
await build({
  ...common,
  entryPoints: [path.join(root, 'src', 'daemon', 'launcher.ts')],
  outfile,
  banner: { js: '#!/usr/bin/env node' },
  define: { __TWILLD_PAYLOAD_FILE__: JSON.stringify(path.basename(payloadFile)), __TWILLD_BUILD_ID__: JSON.stringify(buildId) },
});
chmodSync(outfile, 0o755);
console.log(`${path.relative(process.cwd(), outfile)}: ${(statSync(outfile).size / 1024).toFixed(1)} KiB, build ${buildId}`);
