// The execution protocol end to end without root: env validation (4), stdin decoding (6),
// versions (1), config (7), error mapping, STATUS, VERSION, and "garbage never produces a stack
// trace or state". Nothing here reaches netlink: every ADD fails before the kernel is touched.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, parseEnv, readStdin } from '../../src/cni/skel';
import { CniError, toCniError } from '../../src/cni/errors';
import { NetlinkError } from '../../src/netlink/errors';
import { SubnetFileError } from '../../src/subnet/subnet-file';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-cni-skel-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const subnetFile = path.join(tmp, 'subnet.env');
fs.writeFileSync(subnetFile, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
const dataDir = path.join(tmp, 'data');
const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.1.0', name: 'podnet', type: 'twill', subnetFile, dataDir, ...extra });
const addEnv = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_IFNAME: 'eth0', CNI_NETNS: '/run/netns/does-not-exist-twill', CNI_PATH: '/usr/lib/cni' };

function errOf(out: { stdout: string; exitCode: number }): { cniVersion: string; code: number; msg: string; details?: string } {
  assert.equal(out.exitCode, 1, out.stdout);
  return JSON.parse(out.stdout);
}

test('VERSION reports the supported versions, echoing the requested one', () => {
  const out = run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
  assert.equal(out.exitCode, 0);
  assert.deepEqual(JSON.parse(out.stdout), { cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  assert.equal(JSON.parse(run({ CNI_COMMAND: 'VERSION' }, '').stdout).cniVersion, '1.1.0');
  assert.equal(JSON.parse(run({ CNI_COMMAND: 'VERSION' }, 'junk').stdout).cniVersion, '1.1.0');
});

test('CNI_COMMAND missing or unknown is error 4 naming it', () => {
  for (const env of [{}, { CNI_COMMAND: '' }, { CNI_COMMAND: 'add' }, { CNI_COMMAND: 'DESTROY' }]) {
    const e = errOf(run(env, conf()));
    assert.equal(e.code, 4);
    assert.match(e.msg, /CNI_COMMAND/);
  }
});

test('per-attachment variables are validated as the spec says (error 4)', () => {
  const bad: Array<[Record<string, string>, string]> = [
    [{ CNI_CONTAINERID: '' }, 'CNI_CONTAINERID'],
    [{ CNI_CONTAINERID: '-abc' }, 'CNI_CONTAINERID'],
    [{ CNI_CONTAINERID: 'a/b' }, 'CNI_CONTAINERID'],
    [{ CNI_CONTAINERID: 'a b' }, 'CNI_CONTAINERID'],
    [{ CNI_CONTAINERID: '../../etc' }, 'CNI_CONTAINERID'],
    [{ CNI_IFNAME: '' }, 'CNI_IFNAME'],
    [{ CNI_IFNAME: '.' }, 'CNI_IFNAME'],
    [{ CNI_IFNAME: '..' }, 'CNI_IFNAME'],
    [{ CNI_IFNAME: 'eth0/x' }, 'CNI_IFNAME'],
    [{ CNI_IFNAME: 'eth:0' }, 'CNI_IFNAME'],
    [{ CNI_IFNAME: 'eth 0' }, 'CNI_IFNAME'],
    [{ CNI_IFNAME: 'a-sixteen-chars!' }, 'CNI_IFNAME'],
    [{ CNI_NETNS: '' }, 'CNI_NETNS'],
    [{ CNI_NETNS: 'run/netns/x' }, 'CNI_NETNS'],
  ];
  for (const [patch, name] of bad) {
    const e = errOf(run({ ...addEnv, ...patch }, conf()));
    assert.equal(e.code, 4, JSON.stringify(patch));
    assert.equal(e.details, name);
  }
  // DEL may come without a namespace; container ID and ifname are still required.
  assert.equal(parseEnv({ CNI_CONTAINERID: 'abc', CNI_IFNAME: 'eth0' }, 'DEL').netns, undefined);
  assert.throws(() => parseEnv({ CNI_IFNAME: 'eth0' }, 'DEL'), (e: unknown) => e instanceof CniError && e.cniCode === 4);
  // GC and STATUS need none of them.
  assert.doesNotThrow(() => parseEnv({}, 'GC'));
  assert.doesNotThrow(() => parseEnv({}, 'STATUS'));
});

test('stdin that is not a JSON object is error 6; a bad config is 7; versions are 1', () => {
  assert.equal(errOf(run(addEnv, '')).code, 6);
  assert.equal(errOf(run(addEnv, '{nope')).code, 6);
  assert.equal(errOf(run(addEnv, '[1,2]')).code, 6);
  assert.equal(errOf(run(addEnv, conf({ mtu: 'big' }))).code, 7);
  const v = errOf(run(addEnv, conf({ cniVersion: '0.2.0' })));
  assert.equal(v.code, 1);
  assert.equal(v.cniVersion, '0.2.0');
  assert.equal(errOf(run({ ...addEnv, CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.3.1' }))).code, 1);
  assert.equal(errOf(run({ CNI_COMMAND: 'STATUS' }, conf({ cniVersion: '1.0.0' }))).code, 1);
  assert.equal(errOf(run({ CNI_COMMAND: 'GC' }, conf({ cniVersion: '1.0.0' }))).code, 1);
});

test('errors echo the config cniVersion', () => {
  assert.equal(errOf(run(addEnv, conf({ cniVersion: '0.4.0', mtu: -1 }))).cniVersion, '0.4.0');
});

test('ADD without a subnet file is error 11 (try again later) and allocates nothing', () => {
  const e = errOf(run(addEnv, conf({ subnetFile: path.join(tmp, 'missing.env') })));
  assert.equal(e.code, 11);
  assert.match(e.msg, /does not exist yet/);
  assert.ok(!fs.existsSync(path.join(dataDir, 'podnet')) || fs.readdirSync(path.join(dataDir, 'podnet')).length === 0);
});

test('ADD with an invalid subnet file is error 102', () => {
  const bad = path.join(tmp, 'bad.env');
  fs.writeFileSync(bad, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.245.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  assert.equal(errOf(run(addEnv, conf({ subnetFile: bad }))).code, 102);
});

test('ADD into a namespace that does not exist is error 3 and leaves no reservation', () => {
  const e = errOf(run(addEnv, conf()));
  assert.equal(e.code, 3);
  const dir = path.join(dataDir, 'podnet');
  assert.ok(!fs.existsSync(dir) || fs.readdirSync(dir).filter((f) => /^\d/.test(f)).length === 0);
});

test('STATUS: 50 without the subnet file, success with it, 50 when the subnet is full', () => {
  assert.equal(errOf(run({ CNI_COMMAND: 'STATUS' }, conf({ subnetFile: path.join(tmp, 'missing.env') }))).code, 50);
  const ok = run({ CNI_COMMAND: 'STATUS' }, conf());
  assert.deepEqual(ok, { stdout: '', exitCode: 0 });
  const small = path.join(tmp, 'small.env');
  fs.writeFileSync(small, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.9.1/30\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  const full = path.join(tmp, 'full');
  fs.mkdirSync(path.join(full, 'podnet'), { recursive: true });
  fs.writeFileSync(path.join(full, 'podnet', '10.244.9.2'), 'c\r\neth0');
  const e = errOf(run({ CNI_COMMAND: 'STATUS' }, conf({ subnetFile: small, dataDir: full })));
  assert.equal(e.code, 50);
  assert.match(e.msg, /allocated/);
});

test('GC without the valid-attachments list refuses (7) instead of deleting everything', () => {
  const e = errOf(run({ CNI_COMMAND: 'GC' }, conf()));
  assert.equal(e.code, 7);
  assert.equal(e.details, 'cni.dev/valid-attachments');
});

test('CHECK without prevResult is error 7', () => {
  const e = errOf(run({ ...addEnv, CNI_COMMAND: 'CHECK' }, conf()));
  assert.equal(e.code, 7);
  assert.equal(e.details, 'prevResult');
});

test('error mapping: netlink 104, subnet file 102, fs errors 5, the unexpected 100', () => {
  assert.equal(toCniError(new NetlinkError(17, 'create', 'link x')).cniCode, 104);
  assert.equal(toCniError(new SubnetFileError('bad')).cniCode, 102);
  const fsErr = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  assert.equal(toCniError(fsErr).cniCode, 5);
  assert.equal(toCniError(new TypeError('boom')).cniCode, 100);
  assert.equal(toCniError('a string').cniCode, 100);
  const e = new CniError('ERR_CNI_IFACE_EXISTS', 'x');
  assert.equal(toCniError(e), e);
  assert.equal(e.cniCode, 101);
});

test('fuzz: random stdin and environments always give error JSON, never an exception', () => {
  const cmds = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION', 'junk', ''];
  const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)]!;
  const junk = (): string => Buffer.from(Array.from({ length: Math.floor(Math.random() * 60) }, () => Math.floor(Math.random() * 256))).toString('latin1');
  const values = ['', 'eth0', '../..', '/run/netns/none-twill', 'a'.repeat(300), '\u{1F600}', '.', 'x y', junk()];
  const stdins = [
    junk,
    () => JSON.stringify(pick([null, 1, 'x', [], {}, { cniVersion: 5 }, { cniVersion: '1.1.0' }, { cniVersion: '1.1.0', name: '../x', type: 'twill' }])),
    () => conf({ subnetFile: path.join(tmp, 'missing.env'), mtu: pick([1, 'x', null, 1500]), hairpinMode: pick([1, true, 'no']) }),
  ];
  for (let i = 0; i < 500; i++) {
    const env: Record<string, string> = { CNI_COMMAND: pick(cmds) };
    for (const k of ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS', 'CNI_ARGS']) if (Math.random() < 0.7) env[k] = pick(values);
    // Valid-looking DEL/GC calls would reach the host namespace's netlink: keep them invalid.
    if (env['CNI_COMMAND'] === 'DEL' || env['CNI_COMMAND'] === 'GC') env['CNI_CONTAINERID'] = '../bad';
    const stdin = pick(stdins)();
    const out = run(env, env['CNI_COMMAND'] === 'GC' ? junk() : stdin);
    const parsed = JSON.parse(out.stdout) as Record<string, unknown>;
    if (out.exitCode !== 0) {
      assert.equal(typeof parsed['code'], 'number');
      assert.equal(typeof parsed['msg'], 'string');
      assert.notEqual(parsed['code'], 100, `unexpected internal error for ${JSON.stringify(env)} ${JSON.stringify(stdin)}: ${out.stdout}`);
    } else {
      assert.equal(env['CNI_COMMAND'], 'VERSION');
    }
  }
});

test('the executable prints error JSON, no stack trace, and exits non-zero on garbage', () => {
  const bin = path.resolve(__dirname, '../../src/cmd/twill.js');
  const env = { PATH: process.env['PATH'] ?? '', CNI_COMMAND: 'ADD', CNI_CONTAINERID: '$(rm -rf /)', CNI_IFNAME: 'eth0', CNI_NETNS: '/proc/1/ns/net' };
  for (const input of [Buffer.from([0, 255, 1, 2, 3]), Buffer.from('{"cniVersion":"1.0.0"'), Buffer.alloc(0)]) {
    const r = spawnSync(process.execPath, [bin], { env, input, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, '');
    const e = JSON.parse(r.stdout) as { code: number };
    assert.ok(e.code === 4 || e.code === 6, r.stdout);
  }
  const closed = spawnSync(process.execPath, [bin], { env: { ...env, CNI_CONTAINERID: 'abc' }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  assert.equal(closed.status, 1);
  assert.equal(JSON.parse(closed.stdout).code, 6);
  const version = spawnSync(process.execPath, [bin], { env: { PATH: '', CNI_COMMAND: 'VERSION' }, input: '', encoding: 'utf8' });
  assert.equal(version.status, 0);
  assert.deepEqual(JSON.parse(version.stdout).supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
});

test('readStdin reads a whole file descriptor', () => {
  const f = path.join(tmp, 'stdin.json');
  fs.writeFileSync(f, 'x'.repeat(200_000));
  const fd = fs.openSync(f, 'r');
  try {
    assert.equal(readStdin(fd).length, 200_000);
  } finally {
    fs.closeSync(fd);
  }
});
