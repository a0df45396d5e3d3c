import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  formatSubnetFile,
  writeSubnetFile,
  readSubnetFile,
  readSubnetFileSync,
  parseSubnetEnv,
  parseEnvText,
  SubnetFileError,
} from '../../src/subnet/subnet-file';

async function tmpdir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'twill-subnet-file-'));
}

const SAMPLE = { network: '10.244.0.0/16', subnet: '10.244.7.1/24', mtu: 1450, ipMasq: false };

function subnetFileError(key?: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof SubnetFileError, `not a SubnetFileError: ${String(err)}`);
    assert.equal(err.code, 'ERR_SUBNET_FILE');
    if (key !== undefined) assert.equal(err.key, key);
    return true;
  };
}

test('formatSubnetFile produces flannel format byte for byte', () => {
  assert.equal(formatSubnetFile(SAMPLE), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  assert.match(formatSubnetFile({ ...SAMPLE, ipMasq: true }), /^FLANNEL_IPMASQ=true$/m);
});

test('formatSubnetFile refuses values that would produce an unreadable file', () => {
  assert.throws(() => formatSubnetFile({ ...SAMPLE, network: '10.244.0.0' }), subnetFileError('FLANNEL_NETWORK'));
  assert.throws(() => formatSubnetFile({ ...SAMPLE, subnet: '10.244.7.1/33' }), subnetFileError('FLANNEL_SUBNET'));
  assert.throws(() => formatSubnetFile({ ...SAMPLE, mtu: 1450.5 }), subnetFileError('FLANNEL_MTU'));
});

test('write then read round-trips; parent directories are created; no temp files remain', async () => {
  const dir = await tmpdir();
  const file = path.join(dir, 'run', 'twill', 'subnet.env');
  await writeSubnetFile(file, formatSubnetFile(SAMPLE));
  const record = await readSubnetFile(file);
  assert.deepEqual(record, {
    FLANNEL_NETWORK: '10.244.0.0/16',
    FLANNEL_SUBNET: '10.244.7.1/24',
    FLANNEL_MTU: '1450',
    FLANNEL_IPMASQ: 'false',
  });
  assert.deepEqual(parseSubnetEnv(record!), SAMPLE);
  assert.deepEqual(readSubnetFileSync(file), record);
  assert.deepEqual(await fsp.readdir(path.dirname(file)), ['subnet.env']);
  await fsp.rm(dir, { recursive: true });
});

test('the file gets mode 0644 regardless of umask', async () => {
  const dir = await tmpdir();
  const file = path.join(dir, 'subnet.env');
  const old = process.umask(0o077);
  try {
    await writeSubnetFile(file, 'X=1\n');
  } finally {
    process.umask(old);
  }
  assert.equal((await fsp.stat(file)).mode & 0o777, 0o644);
  await fsp.rm(dir, { recursive: true });
});

test('replacing is atomic: a reader holding the old file sees it whole, new opens see the new one', async () => {
  const dir = await tmpdir();
  const file = path.join(dir, 'subnet.env');
  await writeSubnetFile(file, formatSubnetFile(SAMPLE));
  const before = await fsp.stat(file);
  const oldFd = fs.openSync(file, 'r');
  try {
    const next = formatSubnetFile({ ...SAMPLE, subnet: '10.244.9.1/24', mtu: 1400 });
    await writeSubnetFile(file, next);
    // rename() swapped in a new inode; the old one was never written to.
    assert.notEqual((await fsp.stat(file)).ino, before.ino);
    assert.equal(fs.readFileSync(oldFd, 'utf8'), formatSubnetFile(SAMPLE));
    assert.equal(await fsp.readFile(file, 'utf8'), next);
  } finally {
    fs.closeSync(oldFd);
  }
  assert.deepEqual(await fsp.readdir(dir), ['subnet.env']);
  await fsp.rm(dir, { recursive: true });
});

test('a failed write leaves no temp file behind and the error propagates', async () => {
  const dir = await tmpdir();
  const target = path.join(dir, 'subnet.env');
  await fsp.mkdir(path.join(target, 'occupied'), { recursive: true }); // rename onto a non-empty dir fails
  await assert.rejects(writeSubnetFile(target, 'X=1\n'));
  assert.deepEqual(await fsp.readdir(dir), ['subnet.env']);
  assert.ok((await fsp.stat(target)).isDirectory());
  await fsp.rm(dir, { recursive: true });
});

test('concurrent writers never produce a torn file', async () => {
  const dir = await tmpdir();
  const file = path.join(dir, 'subnet.env');
  const contents = Array.from({ length: 20 }, (_, i) => formatSubnetFile({ ...SAMPLE, subnet: `10.244.${i}.1/24` }));
  await Promise.all(contents.map((c) => writeSubnetFile(file, c)));
  assert.ok(contents.includes(await fsp.readFile(file, 'utf8')));
  assert.deepEqual(await fsp.readdir(dir), ['subnet.env']);
  await fsp.rm(dir, { recursive: true });
});

test('absent file reads as null (async and sync)', async () => {
  const dir = await tmpdir();
  assert.equal(await readSubnetFile(path.join(dir, 'missing.env')), null);
  assert.equal(readSubnetFileSync(path.join(dir, 'missing.env')), null);
  await fsp.rm(dir, { recursive: true });
});

test('unreadable path (a directory) is a SubnetFileError with the cause', async () => {
  const dir = await tmpdir();
  await assert.rejects(readSubnetFile(dir), (err: unknown) => subnetFileError()(err) && (err as Error).cause !== undefined);
  assert.throws(() => readSubnetFileSync(dir), subnetFileError());
  await fsp.rm(dir, { recursive: true });
});

test('tolerant parser: comments, blanks, quotes, export, CRLF, junk lines, later keys win', () => {
  const text = [
    '# written by hand',
    '',
    '   FLANNEL_NETWORK = "10.244.0.0/16"  ',
    "export FLANNEL_SUBNET='10.244.7.1/24'",
    'this line has no equals sign',
    '=no key',
    '9BAD=x',
    'FLANNEL_MTU=1500',
    'FLANNEL_MTU=1450\r',
    'FLANNEL_IPMASQ=true',
    'FLANNEL_IPV6_NETWORK=',
    'QUOTE_MISMATCH="abc\'',
  ].join('\r\n');
  const record = parseEnvText(text);
  assert.deepEqual(record, {
    FLANNEL_NETWORK: '10.244.0.0/16',
    FLANNEL_SUBNET: '10.244.7.1/24',
    FLANNEL_MTU: '1450',
    FLANNEL_IPMASQ: 'true',
    FLANNEL_IPV6_NETWORK: '',
    QUOTE_MISMATCH: '"abc\'',
  });
  assert.deepEqual(parseSubnetEnv(record), { network: '10.244.0.0/16', subnet: '10.244.7.1/24', mtu: 1450, ipMasq: true });
});

test('parseSubnetEnv accepts Go boolean spellings', () => {
  const base = { FLANNEL_NETWORK: '10.244.0.0/16', FLANNEL_SUBNET: '10.244.7.1/24', FLANNEL_MTU: '1450' };
  for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(parseSubnetEnv({ ...base, FLANNEL_IPMASQ: t }).ipMasq, true);
  for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(parseSubnetEnv({ ...base, FLANNEL_IPMASQ: f }).ipMasq, false);
});

test('parseSubnetEnv names the missing or invalid key', () => {
  const good = { FLANNEL_NETWORK: '10.244.0.0/16', FLANNEL_SUBNET: '10.244.7.1/24', FLANNEL_MTU: '1450', FLANNEL_IPMASQ: 'false' };
  for (const key of Object.keys(good)) {
    const missing: Record<string, string> = { ...good };
    delete missing[key];
    assert.throws(() => parseSubnetEnv(missing), subnetFileError(key), `missing ${key}`);
    assert.throws(() => parseSubnetEnv({ ...good, [key]: '' }), subnetFileError(key), `empty ${key}`);
  }
  const bad: Array<[string, string]> = [
    ['FLANNEL_NETWORK', '10.244.0.0'],
    ['FLANNEL_NETWORK', '10.244.0.0/40'],
    ['FLANNEL_NETWORK', 'fd00::/64'],
    ['FLANNEL_SUBNET', '10.244.300.1/24'],
    ['FLANNEL_SUBNET', '10.245.7.1/24'], // outside the network
    ['FLANNEL_SUBNET', '10.244.7.1/8'], // wider than the network
    ['FLANNEL_MTU', 'big'],
    ['FLANNEL_MTU', '1450.5'],
    ['FLANNEL_MTU', '67'],
    ['FLANNEL_MTU', '65536'],
    ['FLANNEL_IPMASQ', 'yes'],
  ];
  for (const [key, value] of bad) {
    assert.throws(() => parseSubnetEnv({ ...good, [key]: value }), subnetFileError(key), `${key}=${value}`);
  }
});
