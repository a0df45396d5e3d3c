// `twillctl install --root <tmp>`: every file in place with the right mode, programs that run
// from the install, an edited settings file kept on upgrade, releases switched and pruned,
// and the unit accepted by `systemd-analyze verify` (when systemd-analyze is installed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { runWithOpenStdin } from '../support/proc';

const PKG = path.resolve(__dirname, '../../..');
const TWILLCTL = path.join(PKG, 'dist/src/cmd/twillctl.js');
let tmp: string;
let root: string;

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e['NODE_EXTRA_CA_CERTS'];
  return e;
}

function run(cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', env: { ...env(), ...extraEnv }, timeout: 120_000 });
}

function twillctl(...args: string[]) {
  return run(process.execPath, [TWILLCTL, ...args]);
}

function mode(p: string): number {
  return fs.statSync(p).mode & 0o7777;
}

function releases(): string[] {
  return fs.readdirSync(path.join(root, 'opt/twill/releases')).filter((n) => !n.startsWith('.')).sort();
}

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-install-'));
  root = path.join(tmp, 'root');
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('install puts every file in place with the right mode', () => {
  const r = twillctl('install', '--root', root, '--etcd-endpoints', 'http://192.168.56.11:2379', '--iface', 'eth1');
  assert.equal(r.status, 0, r.stderr + r.stdout);

  const files: Array<[string, number]> = [
    ['usr/local/bin/twilld', 0o755],
    ['usr/local/bin/twillctl', 0o755],
    ['opt/cni/bin/twill', 0o755],
    ['opt/twill/libexec/twill-cni', 0o755],
    ['etc/systemd/system/twilld.service', 0o644],
    ['etc/systemd/system/twill-cni.service', 0o644],
    ['etc/twill/twilld.env', 0o644],
    ['etc/cni/net.d/10-twill.conflist', 0o644],
  ];
  for (const [rel, m] of files) {
    const p = path.join(root, rel);
    assert.ok(fs.statSync(p).isFile(), `${rel} is a file`);
    assert.equal(mode(p).toString(8), m.toString(8), `${rel} mode`);
  }

  // current -> releases/<id>, relative, so the tree can be moved (and is valid under --root).
  const link = fs.readlinkSync(path.join(root, 'opt/twill/current'));
  assert.ok(!path.isAbsolute(link), link);
  assert.match(link, /^releases\/\d+\.\d+\.\d+-\d{8}-\d{6}-[0-9a-f]{6}$/);
  const rel = path.join(root, 'opt/twill/current');
  for (const f of ['package.json', 'dist/src/cmd/twilld.js', 'dist/src/cmd/twill.js', 'dist/src/cmd/twillctl.js', 'build/Release/twill_native.node', 'build/Release/twill-cni', 'systemd/twilld.service', 'systemd/twill-cni.service', 'node_modules/etcd3/package.json', 'node_modules/pino/package.json', 'node_modules/netlink/package.json']) {
    assert.ok(fs.existsSync(path.join(rel, f)), `release has ${f}`);
  }
  // Production dependencies only, without their tests; no tests or benchmarks of our own.
  for (const f of ['node_modules/typescript', 'node_modules/esbuild', 'node_modules/node-gyp', 'node_modules/pino/test', 'dist/test', 'dist/bench']) {
    assert.ok(!fs.existsSync(path.join(rel, f)), `release has no ${f}`);
  }

  const envText = fs.readFileSync(path.join(root, 'etc/twill/twilld.env'), 'utf8');
  assert.match(envText, /^TWILLD_ETCD_ENDPOINTS=http:\/\/192\.168\.56\.11:2379$/m);
  assert.match(envText, /^TWILLD_IFACE=eth1$/m);

  const conflist = JSON.parse(fs.readFileSync(path.join(root, 'etc/cni/net.d/10-twill.conflist'), 'utf8')) as { cniVersion: string; name: string; plugins: Array<{ type: string }> };
  assert.equal(conflist.name, 'twill');
  assert.deepEqual(
    conflist.plugins.map((p) => p.type),
    ['twill', 'portmap'],
  );
  for (const unit of ['twilld.service', 'twill-cni.service']) {
    assert.equal(fs.readFileSync(path.join(root, 'etc/systemd/system', unit), 'utf8'), fs.readFileSync(path.join(PKG, 'systemd', unit), 'utf8'));
  }
  // The runtime-facing plugin is the native front-end, byte for byte the package's build.
  assert.deepEqual(fs.readFileSync(path.join(root, 'opt/cni/bin/twill')), fs.readFileSync(path.join(PKG, 'build/Release/twill-cni')));
});

test('the installed programs run from the install root', () => {
  const version = (JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8')) as { version: string }).version;
  const d = run(path.join(root, 'usr/local/bin/twilld'), ['--version']);
  assert.equal(d.status, 0, d.stderr);
  assert.equal(d.stdout.trim(), `twilld ${version}`);
  const c = run(path.join(root, 'usr/local/bin/twillctl'), ['--help']);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /twillctl <command>/);
  // The CNI plugin as a runtime runs it (only CNI_* and PATH in the environment), and the Node
  // plugin behind it. Run in a fresh network namespace (unshare), so no `twill serve` of this
  // machine can answer: the front-end must find and run the installed Node plugin itself.
  for (const plugin of ['opt/cni/bin/twill', 'opt/twill/libexec/twill-cni']) {
    const v = spawnSync('unshare', ['--net', path.join(root, plugin)], { encoding: 'utf8', env: { CNI_COMMAND: 'VERSION', PATH: '/usr/bin:/bin' }, input: '{"cniVersion":"0.4.0"}' });
    assert.equal(v.status, 0, `${plugin}: ${v.stderr}${v.stdout}`);
    const answer = JSON.parse(v.stdout) as { cniVersion: string; supportedVersions: string[] };
    assert.equal(answer.cniVersion, '0.4.0', plugin);
    assert.ok(answer.supportedVersions.includes('1.1.0'), plugin);
  }
  const s = run(path.join(root, 'opt/twill/libexec/twill-cni'), ['serve', '--help']);
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /Usage: twill serve/);
});

test('a second install keeps an edited settings file and conflist, switches to a new release', () => {
  const envPath = path.join(root, 'etc/twill/twilld.env');
  const edited = fs.readFileSync(envPath, 'utf8') + 'TWILLD_LOG_LEVEL=debug\n';
  fs.writeFileSync(envPath, edited);
  const conflistPath = path.join(root, 'etc/cni/net.d/10-twill.conflist');
  const conflist = fs.readFileSync(conflistPath, 'utf8').replace('"portmap"', '"portmap-edited"');
  fs.writeFileSync(conflistPath, conflist);
  const first = fs.readlinkSync(path.join(root, 'opt/twill/current'));

  const r = twillctl('install', '--root', root, '--etcd-endpoints', 'http://10.9.9.9:2379');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /kept\s+etc\/twill\/twilld\.env/);
  assert.match(r.stdout, /only seed a new settings file/);
  assert.equal(fs.readFileSync(envPath, 'utf8'), edited);
  assert.equal(fs.readFileSync(conflistPath, 'utf8'), conflist);
  const second = fs.readlinkSync(path.join(root, 'opt/twill/current'));
  assert.notEqual(second, first);
  assert.deepEqual(releases(), [path.basename(first), path.basename(second)].sort(), 'the previous release is kept');

  // A third install prunes the first release: only the new one and its predecessor remain.
  const r3 = twillctl('install', '--root', root);
  assert.equal(r3.status, 0, r3.stderr);
  const third = fs.readlinkSync(path.join(root, 'opt/twill/current'));
  assert.deepEqual(releases(), [path.basename(second), path.basename(third)].sort());
  assert.match(r3.stdout, new RegExp(`pruned\\s+opt/twill/releases/${path.basename(first)}`));
});

function twillctlAsync(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TWILLCTL, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

test('two installs at once into one root: one waits for the other, both succeed, current always resolves', async () => {
  const shared = path.join(tmp, 'concurrent');
  const first = await twillctlAsync('install', '--root', shared);
  assert.equal(first.status, 0, first.stderr);
  // current is watched the whole time: it must resolve to a release with the daemon's bundle.
  const bundle = path.join(shared, 'opt/twill/current/dist/src/cmd/twilld-bundle.js');
  let broken = 0;
  let looking = true;
  const watch = (async () => {
    while (looking) {
      if (!fs.existsSync(bundle)) broken++;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const runs = await Promise.all([1, 2, 3].map(() => twillctlAsync('install', '--root', shared)));
  looking = false;
  await watch;
  for (const r of runs) assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.ok(runs.some((r) => /waiting for the install by pid \d+/.test(r.stderr)), runs.map((r) => r.stderr).join('\n'));
  assert.equal(broken, 0, 'current resolved at every look');
  assert.ok(fs.existsSync(bundle));
  const rels = fs.readdirSync(path.join(shared, 'opt/twill/releases')).filter((n) => !n.startsWith('.'));
  assert.equal(rels.length, 2, `the new release and the previous one: ${rels.join(' ')}`);
  assert.ok(rels.includes(path.basename(fs.readlinkSync(path.join(shared, 'opt/twill/current')))));
});

test('the installed CNI front-end run by hand (no CNI_COMMAND) prints what it is, without reading stdin', async () => {
  const r0 = path.join(tmp, 'by-hand');
  assert.equal(twillctl('install', '--root', r0).status, 0);
  const e = env();
  delete e['CNI_COMMAND'];
  const { code, stderr } = await runWithOpenStdin(path.join(r0, 'opt/cni/bin/twill'), [], e);
  assert.equal(code, 0, stderr);
  assert.match(stderr, /^CNI twill plugin v\d+\.\d+\.\d+\nCNI protocol versions supported: /);
});

test('install ends with the next step: systemctl', () => {
  const r = twillctl('install', '--root', path.join(tmp, 'next-step'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^next: systemctl daemon-reload && systemctl enable --now twilld twill-cni/m);
});

test('unusable settings are refused before anything is written', () => {
  const fresh = path.join(tmp, 'refused');
  for (const args of [
    ['--etcd-endpoints', 'ftp://etcd:2379'],
    ['--iface', 'a-name-longer-than-15'],
    ['--node', 'relative/node'],
  ]) {
    const r = twillctl('install', '--root', fresh, ...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, /\[ERR_INSTALL_SETTING\]/);
  }
  assert.ok(!fs.existsSync(fresh));
});

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const noAnalyze = analyze.error ? 'systemd-analyze is not installed' : false;

for (const [unitName, exec] of [
  ['twilld.service', '/usr/local/bin/twilld'],
  ['twill-cni.service', '/opt/twill/libexec/twill-cni serve'],
] as const) {
  test(`systemd-analyze verify accepts the installed ${unitName}`, { skip: noAnalyze }, () => {
    // verify insists that ExecStart= exists; point it at the wrapper inside the temporary root
    // (the rest of the unit is verified as installed).
    const unit = fs.readFileSync(path.join(root, 'etc/systemd/system', unitName), 'utf8');
    const line = `ExecStart=${exec}`;
    assert.ok(unit.split('\n').includes(line), `${unitName} has ${line}`);
    const copy = path.join(tmp, unitName);
    fs.writeFileSync(copy, unit.replace(line, `ExecStart=${path.join(root, exec.replace(/^\//, ''))}`));
    const r = run('systemd-analyze', ['verify', copy]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'no warnings');
  });
}

test('install names the host programs a backend needs that are missing, with the package', async () => {
  const { missingHostTools } = await import('../../src/install/host-tools');
  assert.deepEqual(missingHostTools(() => true), []);
  const lines = missingHostTools((bin) => bin !== 'wireguard-go');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^wireguard-go not found: .*apt-get install -y wireguard-go$/);
});
