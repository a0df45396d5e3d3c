import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadOrCreateVtepMac, normalizeVtepMac, StateError, VTEP_MAC_FILE } from '../../src/subnet/state';

async function tmpdir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'twill-state-'));
}

function generator(...macs: string[]): { calls: () => number; generate: () => string } {
  let i = 0;
  return {
    calls: () => i,
    generate: () => {
      const mac = macs[i++];
      assert.ok(mac !== undefined, 'generator called more often than expected');
      return mac;
    },
  };
}

test('first call generates and persists; later calls return the same MAC without generating', async () => {
  const dir = path.join(await tmpdir(), 'var', 'lib', 'twill');
  const g = generator('0E:AA:BB:CC:DD:01');
  assert.deepEqual(await loadOrCreateVtepMac(dir, g.generate), { mac: '0e:aa:bb:cc:dd:01', created: true, replacedCorrupt: false });
  assert.equal(await fsp.readFile(path.join(dir, VTEP_MAC_FILE), 'utf8'), '0e:aa:bb:cc:dd:01\n');
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await loadOrCreateVtepMac(dir, g.generate), { mac: '0e:aa:bb:cc:dd:01', created: false, replacedCorrupt: false });
  }
  assert.equal(g.calls(), 1);
  assert.deepEqual(await fsp.readdir(dir), [VTEP_MAC_FILE]);
  await fsp.rm(path.dirname(path.dirname(path.dirname(dir))), { recursive: true });
});

test('a hand-written file with surrounding whitespace and uppercase is accepted as is', async () => {
  const dir = await tmpdir();
  await fsp.writeFile(path.join(dir, VTEP_MAC_FILE), '  0A:00:00:00:00:2F \n');
  const g = generator();
  assert.deepEqual(await loadOrCreateVtepMac(dir, g.generate), { mac: '0a:00:00:00:00:2f', created: false, replacedCorrupt: false });
  await fsp.rm(dir, { recursive: true });
});

test('a corrupt file is replaced and reported, not fatal', async () => {
  for (const corrupt of ['', 'garbage', '0e:aa:bb:cc:dd', '0e:aa:bb:cc:dd:01:02', '01:00:5e:00:00:01' /* multicast */, '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff']) {
    const dir = await tmpdir();
    const file = path.join(dir, VTEP_MAC_FILE);
    await fsp.writeFile(file, corrupt);
    const g = generator('0e:00:00:00:00:07');
    assert.deepEqual(await loadOrCreateVtepMac(dir, g.generate), { mac: '0e:00:00:00:00:07', created: true, replacedCorrupt: true }, corrupt);
    assert.equal(await fsp.readFile(file, 'utf8'), '0e:00:00:00:00:07\n');
    assert.deepEqual(await loadOrCreateVtepMac(dir, g.generate), { mac: '0e:00:00:00:00:07', created: false, replacedCorrupt: false });
    await fsp.rm(dir, { recursive: true });
  }
});

test('an invalid generated MAC is a StateError and nothing is written', async () => {
  const dir = await tmpdir();
  await assert.rejects(
    loadOrCreateVtepMac(dir, () => '01:02:03:04:05:06'),
    (err: unknown) => err instanceof StateError && err.code === 'ERR_STATE',
  );
  assert.deepEqual(await fsp.readdir(dir), []);
  await fsp.rm(dir, { recursive: true });
});

test('an unreadable state file is a StateError, not silently replaced', async () => {
  const dir = await tmpdir();
  await fsp.mkdir(path.join(dir, VTEP_MAC_FILE));
  await assert.rejects(
    loadOrCreateVtepMac(dir, () => '0e:00:00:00:00:01'),
    (err: unknown) => err instanceof StateError && err.code === 'ERR_STATE' && err.cause !== undefined,
  );
  await fsp.rm(dir, { recursive: true });
});

test('normalizeVtepMac', () => {
  assert.equal(normalizeVtepMac('0E:1f:00:00:00:01'), '0e:1f:00:00:00:01');
  assert.equal(normalizeVtepMac('0e-1f-00-00-00-01'), null);
  assert.equal(normalizeVtepMac('0e1f00000001'), null);
  assert.equal(normalizeVtepMac('03:00:00:00:00:01'), null);
});
