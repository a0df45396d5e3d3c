// Plugin config parsing: defaults, unknown fields, wrong types (error 7 naming the field),
// versions (error 1), GC attachments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { checkVersion, decodeJson, DEFAULTS, ifnameProblem, misspeltField, parseConfig } from '../../src/cni/config';
import { aboutText } from '../../src/cni/skel';
import { childEnv, runWithOpenStdin } from '../support/proc';

const PLUGIN = path.resolve(__dirname, '../../src/cmd/twill-cni.js');
import { CniError } from '../../src/cni/errors';

const base = { cniVersion: '1.0.0', name: 'podnet', type: 'twill' };

function cniError(code: number, field?: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof CniError, `not a CniError: ${String(err)}`);
    assert.equal(err.cniCode, code, err.message);
    if (field !== undefined) {
      assert.match(err.message, new RegExp(`"${field.replace(/[[\]./]/g, '\\$&')}"`));
      assert.equal(err.details, field);
    }
    return true;
  };
}

test('defaults apply and unknown fields are ignored', () => {
  const c = parseConfig({ ...base, whatever: { nested: true }, capabilities: { portMappings: true }, runtimeConfig: {}, args: {} });
  assert.equal(c.subnetFile, DEFAULTS.subnetFile);
  assert.equal(c.dataDir, DEFAULTS.dataDir);
  assert.equal(c.bridge, 'twill0');
  assert.equal(c.mtu, undefined);
  assert.equal(c.hairpinMode, false);
  assert.deepEqual(c.dns, {});
  assert.equal(c.prevResult, undefined);
  assert.equal(c.validAttachments, undefined);
});

test('all documented fields are read', () => {
  const c = parseConfig({
    ...base,
    subnetFile: '/run/x/subnet.env',
    dataDir: '/var/lib/cni/x/',
    bridge: 'br-pods',
    mtu: 1400,
    hairpinMode: true,
    dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'], options: ['ndots:5'], domain: 'cluster.local' },
    prevResult: { cniVersion: '1.0.0', interfaces: [] },
  });
  assert.equal(c.subnetFile, '/run/x/subnet.env');
  assert.equal(c.dataDir, '/var/lib/cni/x');
  assert.equal(c.bridge, 'br-pods');
  assert.equal(c.mtu, 1400);
  assert.equal(c.hairpinMode, true);
  assert.deepEqual(c.dns.nameservers, ['10.96.0.10']);
  assert.equal(c.dns.domain, 'cluster.local');
  assert.deepEqual(c.prevResult, { cniVersion: '1.0.0', interfaces: [] });
});

test('wrong types are error 7 naming the field', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ mtu: '1450' }, 'mtu'],
    [{ mtu: 1450.5 }, 'mtu'],
    [{ mtu: 20 }, 'mtu'],
    [{ mtu: 70000 }, 'mtu'],
    [{ hairpinMode: 'yes' }, 'hairpinMode'],
    [{ bridge: 5 }, 'bridge'],
    [{ bridge: 'a-very-long-bridge-name' }, 'bridge'],
    [{ bridge: 'br/0' }, 'bridge'],
    [{ subnetFile: 'relative/subnet.env' }, 'subnetFile'],
    [{ subnetFile: ['x'] }, 'subnetFile'],
    [{ dataDir: 7 }, 'dataDir'],
    [{ dns: 'x' }, 'dns'],
    [{ dns: { nameservers: '1.1.1.1' } }, 'dns.nameservers'],
    [{ dns: { domain: 1 } }, 'dns.domain'],
    [{ prevResult: [] }, 'prevResult'],
    [{ name: 'bad/name' }, 'name'],
    [{ name: '' }, 'name'],
    [{ name: '../etc' }, 'name'],
    [{ name: 5 }, 'name'],
    [{ type: 3 }, 'type'],
    [{ cniVersion: 1 }, 'cniVersion'],
    [{ 'cni.dev/valid-attachments': {} }, 'cni.dev/valid-attachments'],
    [{ 'cni.dev/valid-attachments': [{ containerID: 'a' }] }, 'cni.dev/valid-attachments[0]'],
  ];
  for (const [patch, field] of cases) {
    assert.throws(() => parseConfig({ ...base, ...patch }), cniError(7, field), JSON.stringify(patch));
  }
  const { name: _n, ...noName } = base;
  assert.throws(() => parseConfig(noName), cniError(7, 'name'));
});

test('cniVersion: missing or unsupported is error 1; every supported version parses', () => {
  const { cniVersion: _v, ...noVersion } = base;
  assert.throws(() => checkVersion(noVersion), cniError(1));
  for (const v of ['0.1.0', '0.2.0', '2.0.0', '1.0', 'latest']) assert.throws(() => checkVersion({ ...base, cniVersion: v }), cniError(1), v);
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) assert.equal(parseConfig({ ...base, cniVersion: v }).cniVersion, v);
});

test('GC attachments: the 1.1 key and the draft key are both accepted', () => {
  const list = [{ containerID: 'c1', ifname: 'eth0' }, { containerID: 'c2', ifname: 'net1' }];
  const want = [{ containerId: 'c1', ifname: 'eth0' }, { containerId: 'c2', ifname: 'net1' }];
  assert.deepEqual(parseConfig({ ...base, 'cni.dev/valid-attachments': list }).validAttachments, want);
  assert.deepEqual(parseConfig({ ...base, 'cni.dev/attachments': list }).validAttachments, want);
  assert.deepEqual(parseConfig({ ...base, 'cni.dev/valid-attachments': [] }).validAttachments, []);
});

test('stdin decoding: non-JSON and non-objects are error 6', () => {
  for (const s of ['', '   ', 'garbage', '{"a":', '[]', '"x"', '42', 'null', '\u0000\u0001']) {
    assert.throws(() => decodeJson(s), cniError(6), JSON.stringify(s));
  }
  assert.deepEqual(decodeJson('{"a":1}'), { a: 1 });
});

test('interface name rule', () => {
  for (const ok of ['eth0', 'net1', 'a', 'x'.repeat(15), 'eth0.100', 'e-t_h']) assert.equal(ifnameProblem(ok), undefined, ok);
  for (const bad of ['', '.', '..', 'x'.repeat(16), 'a/b', 'a:b', 'a b', 'a\tb', 'a\nb', 'éééééééé']) assert.ok(ifnameProblem(bad), JSON.stringify(bad));
});

test('a whole conflist on stdin: error 7 on "type" with a hint how to pass one plugin object', () => {
  const conflist = { cniVersion: '1.0.0', name: 'twill', plugins: [{ type: 'twill' }, { type: 'portmap' }] };
  assert.throws(() => parseConfig(conflist), (err: unknown) => {
    assert.ok(err instanceof CniError);
    assert.equal(err.cniCode, 7);
    assert.match(err.message, /"type" is required: this is a whole conflist .*jq '\.plugins\[0\] \+ \{cniVersion, name\}'/);
    return true;
  });
});

test('a misspelt field of ours is reported; other unknown fields are left to the runtime', () => {
  for (const [key, meant] of [
    ['subnetfile', 'subnetFile'],
    ['subnetFiel', 'subnetFile'],
    ['datadir', 'dataDir'],
    ['MTU', 'mtu'],
    ['hairpinmode', 'hairpinMode'],
  ] as const) {
    assert.deepEqual(misspeltField({ ...base, [key]: 'x' }), { key, meant });
    assert.throws(() => parseConfig({ ...base, [key]: '/x' }), (err: unknown) => err instanceof CniError && err.cniCode === 7 && err.message.includes(`"${key}" is not a field of the twill plugin; did you mean "${meant}"?`));
  }
  for (const key of ['ipam', 'ipMasq', 'isGateway', 'promiscMode', 'cni.dev/valid-attachments', 'vlan', 'ip', 'foo']) {
    assert.equal(misspeltField({ ...base, [key]: 1 }), undefined, key);
  }
});

test('run by hand without CNI_COMMAND: a short about text, and stdin is not waited for', async () => {
  const text = aboutText('0.1.0');
  assert.match(text, /^CNI twill plugin v0\.1\.0\nCNI protocol versions supported: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0\n/);
  const env = childEnv();
  delete env['CNI_COMMAND'];
  const { code, stdout, stderr } = await runWithOpenStdin(process.execPath, [PLUGIN], env, 5000);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, '');
  assert.match(stderr, /^CNI twill plugin v\d+\.\d+\.\d+\nCNI protocol versions supported/);
});
