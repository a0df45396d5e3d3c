// The bundled plugin's launcher: V8 code cache written once per command, reused, and only
// ever read from a directory and files that nobody but us can write. Also builds the real
// bundle into a temp dir and runs it (VERSION and STATUS need no root and no netlink).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheFileName } from '../../src/cni/launcher';
import { readTrusted, trustedDir } from '../../src/launch/code-cache';

const root = path.resolve(__dirname, '../../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-cni-launcher-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

function runLaunch(cacheDir: string, command: string): string {
  const code = `
    const { launch } = require(${JSON.stringify(path.resolve(__dirname, '../../src/cni/launcher.js'))});
    const payload = '(function (exports, require, module, __filename, __dirname) { module.exports.ok = 1; function f(n) { return n < 2 ? n : f(n - 1) + f(n - 2); } f(15); })';
    process.stdout.write(launch(payload, 'testbuild', ${JSON.stringify(path.join(tmp, 'payload.js'))}, { TWILL_CNI_CODE_CACHE: ${JSON.stringify(cacheDir)}, CNI_COMMAND: ${JSON.stringify(command)} }));`;
  return execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' });
}

test('a cache is written on the first run of a command and used by the next', () => {
  const dir = path.join(tmp, 'cache');
  assert.equal(runLaunch(dir, 'ADD'), 'none');
  const file = path.join(dir, cacheFileName('testbuild', 'ADD'));
  assert.ok(fs.existsSync(file));
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(runLaunch(dir, 'ADD'), 'used');
  assert.equal(runLaunch(dir, 'DEL'), 'none', 'one cache per command');
  // A corrupt cache is rejected by V8 and replaced.
  fs.writeFileSync(file, Buffer.alloc(64, 7), { mode: 0o600 });
  assert.equal(runLaunch(dir, 'ADD'), 'rejected');
  assert.equal(runLaunch(dir, 'ADD'), 'used');
  assert.equal(runLaunch('', 'ADD'), 'off', 'an empty TWILL_CNI_CODE_CACHE disables caching');
});

test('untrusted directories and files are never used', () => {
  const open = path.join(tmp, 'world-writable');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  assert.equal(trustedDir(open), false);
  assert.equal(runLaunch(open, 'ADD'), 'off');
  assert.deepEqual(fs.readdirSync(open), []);

  const dir = path.join(tmp, 'files');
  assert.equal(trustedDir(dir), true);
  const f = path.join(dir, 'c');
  fs.writeFileSync(f, 'x', { mode: 0o600 });
  assert.deepEqual(readTrusted(f), Buffer.from('x'));
  fs.chmodSync(f, 0o666);
  assert.equal(readTrusted(f), undefined, 'writable by others');
  fs.chmodSync(f, 0o600);
  fs.symlinkSync(f, path.join(dir, 'link'));
  assert.equal(readTrusted(path.join(dir, 'link')), undefined, 'symlink');
  assert.equal(readTrusted(path.join(dir, 'missing')), undefined);
  fs.symlinkSync(dir, path.join(tmp, 'dirlink'));
  assert.equal(trustedDir(path.join(tmp, 'dirlink')), false, 'symlinked directory');
  if (isRoot) {
    fs.chownSync(f, 65534, 65534);
    assert.equal(readTrusted(f), undefined, 'foreign owner');
  }
});

test('cache file names carry build, Node version, arch and a sanitised command', () => {
  const f = cacheFileName('abc123', 'ADD;rm -rf');
  assert.equal(f, `twill-cni-abc123-${process.version}-${process.arch}-ADD.v8cache`);
  assert.match(cacheFileName('abc123', ''), /-NONE\.v8cache$/);
});

test('the real bundle builds and runs VERSION and STATUS, with its code cache', () => {
  const out = path.join(tmp, 'bundle', 'twill-cni.js');
  execFileSync(process.execPath, [path.join(root, 'scripts', 'bundle-cni.mjs'), '--out', out], { encoding: 'utf8' });
  const cache = path.join(tmp, 'bundle-cache');
  const env = { PATH: process.env['PATH'] ?? '', TWILL_CNI_CODE_CACHE: cache };
  for (let i = 0; i < 2; i++) {
    const v = spawnSync(out, [], { env: { ...env, CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}', encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    assert.deepEqual(JSON.parse(v.stdout), { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  }
  const st = spawnSync(out, [], { env: { ...env, CNI_COMMAND: 'STATUS' }, input: JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'twill', subnetFile: path.join(tmp, 'none.env') }), encoding: 'utf8' });
  assert.equal(st.status, 1);
  assert.equal(JSON.parse(st.stdout).code, 50);
  assert.equal(st.stderr, '');
  assert.deepEqual(fs.readdirSync(cache).map((f) => f.replace(/^twill-cni-\w+-v[\d.]+-\w+-/, '')).sort(), ['STATUS.v8cache', 'VERSION.v8cache']);
});
