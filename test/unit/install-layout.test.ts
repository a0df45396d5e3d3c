// The pure parts of `twillctl install`: wrapper text, settings file rendering, conflist,
// release ids, and the production dependency closure of a package tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CNI_NODE_PLUGIN_PATH, CNI_PLUGIN_PATH, CONFLIST_PATH, WRAPPERS, releaseId, renderConflist, renderEnvFile, renderWrapper } from '../../src/install/layout';
import { productionPackages } from '../../src/install/prod-deps';
import { InstallError } from '../../src/install/errors';
import { hostWarnings } from '../../src/install/install';
import { locateNft } from '../../src/firewall/nft';

test('wrappers find the release relative to themselves and exec the given node', () => {
  const twilld = WRAPPERS.find((w) => w.path === 'usr/local/bin/twilld')!;
  const text = renderWrapper(twilld, '/usr/bin/node');
  assert.ok(text.startsWith('#!/bin/sh\n'));
  assert.match(text, /^root=\$\(dirname "\$\(readlink -f "\$0"\)"\)\/\.\.\/\.\.\/\.\.$/m);
  assert.match(text, /^exec '\/usr\/bin\/node' '--max-semi-space-size=2' '--expose-gc' "\$root\/opt\/twill\/current\/dist\/src\/cmd\/twilld-bundle\.js" "\$@"$/m);
  const cni = WRAPPERS.find((w) => w.path === 'opt/twill/libexec/twill-cni')!;
  assert.match(text, /^export MALLOC_ARENA_MAX='2'\nexport GLIBC_TUNABLES='glibc\.malloc\.mmap_threshold=131072'\nexec /m, 'the daemon’s environment is exported before the exec');
  assert.doesNotMatch(renderWrapper(cni, '/usr/bin/node'), /^export /m);
  assert.match(renderWrapper(cni, '/usr/bin/node'), /\/\.\.\/\.\.\/\.\.\n/);
  assert.match(renderWrapper(cni, '/usr/bin/node'), /current\/dist\/src\/cmd\/twill-cni\.js" "\$@"$/m);
  // opt/cni/bin/twill is the native front-end, not a wrapper.
  assert.equal(WRAPPERS.find((w) => w.path === 'opt/cni/bin/twill'), undefined);
  // A node path with a quote stays one shell word.
  assert.match(renderWrapper(twilld, "/opt/it's/node"), /^exec '\/opt\/it'\\''s\/node' /m);
});

test('a wrapper really runs: relative paths, symlinked wrapper, arguments passed through', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-wrapper-'));
  try {
    const w = { path: 'usr/local/bin/echoargs', script: 'dist/echo.js' };
    const rel = path.join(tmp, 'opt/twill/releases/r1');
    fs.mkdirSync(path.join(rel, 'dist'), { recursive: true });
    fs.writeFileSync(path.join(rel, 'dist/echo.js'), 'process.stdout.write(JSON.stringify(process.argv.slice(2)))');
    fs.symlinkSync('releases/r1', path.join(tmp, 'opt/twill/current'));
    fs.mkdirSync(path.join(tmp, 'usr/local/bin'), { recursive: true });
    fs.writeFileSync(path.join(tmp, w.path), renderWrapper(w, process.execPath), { mode: 0o755 });
    fs.symlinkSync(path.join(tmp, w.path), path.join(tmp, 'link'));
    for (const exe of [path.join(tmp, w.path), path.join(tmp, 'link')]) {
      const r = spawnSync(exe, ['a b', '$x'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), ['a b', '$x']);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('settings: given values replace their lines (also commented ones), others stay', () => {
  const template = '# head\nTWILLD_ETCD_ENDPOINTS=http://127.0.0.1:2379\n# TWILLD_IFACE=\nTWILLD_LOG_LEVEL=\n';
  assert.equal(renderEnvFile(template, {}), template);
  assert.equal(
    renderEnvFile(template, { etcdEndpoints: 'http://10.0.0.1:2379,http://10.0.0.2:2379', iface: 'eth1' }),
    '# head\nTWILLD_ETCD_ENDPOINTS=http://10.0.0.1:2379,http://10.0.0.2:2379\nTWILLD_IFACE=eth1\nTWILLD_LOG_LEVEL=\n',
  );
  assert.equal(renderEnvFile('# nothing', { iface: 'ens4' }), '# nothing\nTWILLD_IFACE=ens4\n');
});

test('the shipped settings template has a line for every twilld flag with a value', () => {
  const text = fs.readFileSync(path.resolve(__dirname, '../../../systemd/twilld.env'), 'utf8');
  const help = spawnSync(process.execPath, [path.resolve(__dirname, '../../src/cmd/twilld.js'), '--help'], { encoding: 'utf8' }).stdout;
  const names = [...help.matchAll(/env (TWILLD_[A-Z_]+)/g)].map((m) => m[1]!);
  assert.ok(names.length > 10, help);
  for (const n of names) assert.match(text, new RegExp(`^${n}=`, 'm'), `${n} in twilld.env`);
});

test('conflist: twill then portmap, cniVersion 1.0.0', () => {
  const c = JSON.parse(renderConflist()) as { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> };
  assert.equal(c.cniVersion, '1.0.0');
  assert.deepEqual(c.plugins[0], { type: 'twill', subnetFile: '/run/twill/subnet.env', dataDir: '/var/lib/cni/twill' });
  assert.deepEqual(c.plugins[1], { type: 'portmap', capabilities: { portMappings: true } });
  assert.equal(CONFLIST_PATH, 'etc/cni/net.d/10-twill.conflist');
});

test('release ids: version, UTC time, a unique tail', () => {
  assert.equal(releaseId('1.2.3', new Date('2026-01-02T03:04:05.678Z'), 'abc123'), '1.2.3-20260102-030405-abc123');
});

function pkg(dir: string, json: Record<string, unknown>): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(json));
}

test('production closure: hoisted and nested deps, optional and peer ones may be absent', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-deps-'));
  try {
    pkg(root, { name: 'top', dependencies: { a: '1' }, optionalDependencies: { gone: '1' }, devDependencies: { dev: '1' } });
    pkg(path.join(root, 'node_modules/a'), { name: 'a', dependencies: { c: '1', d: '2' }, peerDependencies: { missingpeer: '1' } });
    pkg(path.join(root, 'node_modules/c'), { name: 'c', dependencies: { d: '1' } });
    pkg(path.join(root, 'node_modules/d'), { name: 'd', version: '1' });
    pkg(path.join(root, 'node_modules/a/node_modules/d'), { name: 'd', version: '2' });
    pkg(path.join(root, 'node_modules/dev'), { name: 'dev' });
    pkg(path.join(root, 'node_modules/@s/x'), { name: '@s/x' });
    assert.deepEqual(productionPackages(root), ['node_modules/a', 'node_modules/a/node_modules/d', 'node_modules/c', 'node_modules/d']);

    pkg(path.join(root, 'node_modules/c'), { name: 'c', dependencies: { d: '1', '@s/x': '1', absent: '1' } });
    assert.throws(
      () => productionPackages(root),
      (err: unknown) => err instanceof InstallError && err.code === 'ERR_INSTALL_SOURCE' && /"absent" of c/.test(err.message),
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("this package's closure has its runtime deps and none of its dev deps", () => {
  const deps = productionPackages(path.resolve(__dirname, '../../..'));
  for (const d of ['node_modules/etcd3', 'node_modules/pino', 'node_modules/netlink', 'node_modules/ipaddr.js', 'node_modules/@grpc/grpc-js']) assert.ok(deps.includes(d), d);
  for (const d of ['node_modules/typescript', 'node_modules/esbuild', 'node_modules/node-gyp']) assert.ok(!deps.includes(d), d);
});

test("the front-end's compiled-in path to the Node plugin matches the install layout", () => {
  const gyp = fs.readFileSync(path.resolve(__dirname, '../../../binding.gyp'), 'utf8');
  const rel = /TWILL_FALLBACK_REL=\\"([^"\\]+)\\"/.exec(gyp)?.[1];
  assert.ok(rel, 'binding.gyp defines TWILL_FALLBACK_REL');
  assert.equal(path.posix.normalize(path.posix.join(path.posix.dirname(CNI_PLUGIN_PATH), rel)), CNI_NODE_PLUGIN_PATH);
});

test('host warnings: a missing nft names the package to install; none when it is there', () => {
  assert.deepEqual(hostWarnings({ nftPresent: true }), []);
  const w = hostWarnings({ nftPresent: false });
  assert.equal(w.length, 1);
  assert.match(w[0]!, /nft is not installed.*apt-get install -y nftables/);
});

test('locateNft looks in the usual places and on PATH', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-nft-'));
  try {
    const fake = path.join(dir, 'nft');
    fs.writeFileSync(fake, '#!/bin/sh\n', { mode: 0o755 });
    assert.equal(locateNft({ PATH: `/nonexistent:${dir}` }, []), fake);
    assert.equal(locateNft({ PATH: '/nonexistent' }, [path.join(dir, 'missing'), fake]), fake);
    assert.equal(locateNft({ PATH: '/nonexistent' }, []), null);
    fs.chmodSync(fake, 0o644);
    assert.equal(locateNft({ PATH: dir }, []), null, 'not executable');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
