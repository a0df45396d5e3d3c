// The one error base class (src/base/twill-error.ts): stable `code`, `cause` kept, and every
// error class in src/ derives from it, so callers can branch on `code` everywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorCode, TwillError } from '../../src/base/twill-error';
import { CniError, toCniError } from '../../src/cni/errors';
import { ConfigError } from '../../src/config/errors';
import { EtcdUnreachableError } from '../../src/ctl/errors';
import { InstallError } from '../../src/install/errors';
import { LabError } from '../../src/lab/errors';
import { NetlinkError } from '../../src/netlink/errors';
import { ProbeError } from '../../src/probe/errors';
import { etcdError, SubnetError } from '../../src/subnet/errors';

const SRC = path.resolve(__dirname, '../../../src');

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('a TwillError keeps its code and cause, and has no cause property without one', () => {
  const root = new Error('root');
  const e = new SubnetError('ERR_ETCD', 'etcd get failed', { cause: root });
  assert.ok(e instanceof TwillError && e instanceof Error);
  assert.equal(e.code, 'ERR_ETCD');
  assert.equal(e.cause, root);
  assert.equal(e.name, 'SubnetError');
  const bare = new ConfigError('iface', 'no such interface');
  assert.equal(bare.code, 'ERR_CONFIG');
  assert.ok(!Object.hasOwn(bare, 'cause'));
  assert.equal(etcdError('get', e), e, 'a SubnetError passes through unwrapped');
  assert.equal(etcdError('get', root).cause, root);
});

test('every class of src/*/errors.ts derives from TwillError with a string code', () => {
  const samples: TwillError[] = [
    new CniError('ERR_CNI_IO', 'x'),
    new ConfigError('f', 'x'),
    new EtcdUnreachableError(['http://e:2379'], new Error('down')),
    new InstallError('ERR_INSTALL_TARGET', 'x'),
    new LabError('ERR_LAB_NAME', 'x'),
    new NetlinkError(2, 'op', 'target'),
    new SubnetError('ERR_OUT_OF_SUBNETS', 'x'),
    new ProbeError('ERR_PROBE_CONFIG', 'x'),
  ];
  for (const e of samples) {
    assert.ok(e instanceof TwillError, e.name);
    assert.match(e.code, /^ERR_[A-Z0-9_]+$/, e.name);
  }
  // And the list above is complete: each errors.ts module exports no other class.
  const listed = new Set(samples.map((e) => e.constructor));
  for (const dir of fs.readdirSync(SRC)) {
    const file = path.join(SRC, dir, 'errors.ts');
    if (!fs.existsSync(file)) continue;
    const mod = require(path.resolve(__dirname, '../../src', dir, 'errors')) as Record<string, unknown>;
    for (const [name, v] of Object.entries(mod)) {
      if (typeof v === 'function' && /^class\b/.test(Function.prototype.toString.call(v))) {
        assert.ok(listed.has(v), `${dir}/errors.ts exports ${name}, which this test does not check`);
      }
    }
  }
});

test('no class in src/ extends Error directly except the base', () => {
  const offenders: string[] = [];
  for (const f of tsFiles(SRC)) {
    if (f.endsWith(path.join('base', 'twill-error.ts'))) continue;
    const text = fs.readFileSync(f, 'utf8');
    for (const m of text.matchAll(/class\s+(\w+)\s+extends\s+(Error|TypeError|RangeError)\b/g)) offenders.push(`${path.relative(SRC, f)}: ${m[1]}`);
  }
  assert.deepEqual(offenders, []);
});

test('no code in src/ branches on an error message', () => {
  const offenders: string[] = [];
  const branch = /\.message\s*(===|!==|==|!=)|\.message\.(includes|startsWith|endsWith|match|indexOf|search)\(|\.test\([^)]*\.message\b/;
  for (const f of tsFiles(SRC)) {
    fs.readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (branch.test(line)) offenders.push(`${path.relative(SRC, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, []);
});

test('errorCode reads string codes only; toCniError maps by code', () => {
  assert.equal(errorCode(Object.assign(new Error('x'), { code: 'ENOENT' })), 'ENOENT');
  assert.equal(errorCode({ code: 5 }), undefined);
  assert.equal(errorCode(null), undefined);
  assert.equal(errorCode('ERR_X'), undefined);
  assert.equal(toCniError(new NetlinkError(17, 'add', 'route 10.0.0.0/24')).code, 'ERR_CNI_NETLINK');
  assert.equal(toCniError(Object.assign(new Error('no space'), { code: 'ENOSPC' })).code, 'ERR_CNI_IO');
});
