// The file-per-address allocator against a temp dir: order, exclusions, exhaustion, release,
// GC, and no duplicates under real concurrency (separate processes racing on one directory).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  allocate, decodeOwner, HINT_FILE, listAllocations, ORPHAN_AGE_MS, releaseAllExcept, releaseByOwner, releaseIp, usableCount, attachmentKey, ownerOf,
} from '../../src/cni/ipam';
import { CniError } from '../../src/cni/errors';
import { firstHost, formatIp4, parsePrefix4 } from '../../src/ip/ipv4';

const tmpDirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-cni-ipam-'));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

const net24 = parsePrefix4('10.244.7.0/24');
const gw24 = firstHost(net24);
const owner = (i: number, ifname = 'eth0') => ({ containerId: `c${i}`, ifname });

test('allocates in order from .2, skipping network and gateway, host-local file format', () => {
  const dir = path.join(tmp(), 'podnet'); // does not exist yet: created on first use
  const ips = [0, 1, 2].map((i) => formatIp4(allocate(dir, net24, gw24, owner(i))));
  assert.deepEqual(ips, ['10.244.7.2', '10.244.7.3', '10.244.7.4']);
  assert.equal(fs.readFileSync(path.join(dir, '10.244.7.2'), 'utf8'), 'c0\r\neth0');
  assert.equal(fs.readFileSync(path.join(dir, HINT_FILE), 'utf8'), '10.244.7.4');
  assert.deepEqual(ownerOf(dir, '10.244.7.3'), owner(1));
});

test('round-robin: a released address is not reused before the range wraps', () => {
  const dir = tmp();
  const a = allocate(dir, net24, gw24, owner(1));
  allocate(dir, net24, gw24, owner(2));
  assert.ok(releaseIp(dir, a, owner(1)));
  assert.equal(formatIp4(allocate(dir, net24, gw24, owner(3))), '10.244.7.4');
});

test('never hands out network, gateway or broadcast; exhaustion is a clear error', () => {
  const dir = tmp();
  const net = parsePrefix4('10.1.2.8/29'); // .8 network, .9 gateway, .15 broadcast
  const gw = firstHost(net);
  assert.equal(usableCount(net, gw), 5);
  const got = new Set<string>();
  for (let i = 0; i < 5; i++) got.add(formatIp4(allocate(dir, net, gw, owner(i))));
  assert.deepEqual([...got].sort(), ['10.1.2.10', '10.1.2.11', '10.1.2.12', '10.1.2.13', '10.1.2.14']);
  assert.throws(
    () => allocate(dir, net, gw, owner(99)),
    (err: unknown) => err instanceof CniError && err.code === 'ERR_CNI_IPAM_EXHAUSTED' && err.cniCode === 103 && /no free address/.test(err.message),
  );
  // A stale hint outside the range is ignored.
  fs.writeFileSync(path.join(dir, HINT_FILE), '192.168.0.1');
  releaseByOwner(dir, owner(2));
  assert.equal(formatIp4(allocate(dir, net, gw, owner(7))), '10.1.2.12');
  assert.equal(usableCount(parsePrefix4('10.0.0.0/31'), 0), 0);
  assert.throws(() => allocate(dir, parsePrefix4('10.0.0.0/31'), parsePrefix4('10.0.0.1/32').ip, owner(1)), (e: unknown) => e instanceof CniError && e.cniCode === 103);
});

test('release by owner frees every address of that (container, ifname) and nothing else', () => {
  const dir = tmp();
  allocate(dir, net24, gw24, owner(1));
  allocate(dir, net24, gw24, owner(1, 'net1'));
  allocate(dir, net24, gw24, owner(2));
  // A leaked duplicate of the same owner (an ADD killed before its rollback).
  allocate(dir, net24, gw24, owner(1));
  assert.deepEqual(releaseByOwner(dir, owner(1)).sort(), ['10.244.7.2', '10.244.7.5']);
  assert.deepEqual(releaseByOwner(dir, owner(1)), []);
  assert.deepEqual(listAllocations(dir).map((a) => [a.ip, a.owner]), [
    ['10.244.7.3', owner(1, 'net1')],
    ['10.244.7.4', owner(2)],
  ]);
  assert.deepEqual(releaseByOwner(path.join(dir, 'missing'), owner(1)), []);
});

test('rollback release removes only a reservation that is still ours', () => {
  const dir = tmp();
  const ip = allocate(dir, net24, gw24, owner(1));
  assert.equal(releaseIp(dir, ip, owner(2)), false);
  assert.equal(releaseIp(dir, ip, owner(1)), true);
  assert.equal(releaseIp(dir, ip, owner(1)), false);
});

test('junk in the directory is ignored; empty files are ownerless', () => {
  const dir = tmp();
  fs.writeFileSync(path.join(dir, 'lock'), '');
  fs.writeFileSync(path.join(dir, '.tmpfile'), 'x');
  fs.writeFileSync(path.join(dir, '999.1.1.1'), 'c1\r\neth0');
  fs.writeFileSync(path.join(dir, '10.244.7.9'), '');
  fs.mkdirSync(path.join(dir, 'sub'));
  const all = listAllocations(dir);
  assert.deepEqual(all.map((a) => [a.ip, a.owner]), [['10.244.7.9', undefined]]);
  assert.equal(decodeOwner('c1\neth0\n')?.ifname, 'eth0');
  assert.equal(decodeOwner('c1'), undefined);
});

test('GC releases everything not valid, and ownerless files only once they are old', () => {
  const dir = tmp();
  for (let i = 0; i < 4; i++) allocate(dir, net24, gw24, owner(i));
  fs.writeFileSync(path.join(dir, '10.244.7.100'), '');
  fs.writeFileSync(path.join(dir, '10.244.7.101'), '');
  const old = (Date.now() - ORPHAN_AGE_MS - 5000) / 1000;
  fs.utimesSync(path.join(dir, '10.244.7.101'), old, old);
  const valid = new Set([attachmentKey(owner(1)), attachmentKey(owner(3))]);
  const r = releaseAllExcept(dir, valid);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.released.sort(), ['10.244.7.101', '10.244.7.2', '10.244.7.4']);
  assert.deepEqual(listAllocations(dir).map((a) => a.ip).sort(), ['10.244.7.100', '10.244.7.3', '10.244.7.5']);
  assert.deepEqual(releaseAllExcept(path.join(dir, 'nope'), valid), { released: [], errors: [] });
});

// Each child allocates once from the shared directory and prints the address (or the error).
const CHILD = `
const { allocate } = require(${JSON.stringify(path.resolve(__dirname, '../../src/cni/ipam.js'))});
const { parsePrefix4, firstHost, formatIp4 } = require(${JSON.stringify(path.resolve(__dirname, '../../src/ip/ipv4.js'))});
const [dir, cidr, id] = process.argv.slice(1);
const net = parsePrefix4(cidr);
// Start together: wait for the shared start time so the processes really race.
const at = Number(process.argv[4]);
while (Date.now() < at) {}
try { process.stdout.write(formatIp4(allocate(dir, net, firstHost(net), { containerId: id, ifname: 'eth0' }))); }
catch (e) { process.stdout.write('ERR ' + (e.code || e.message)); }
`;

function runChildren(n: number, dir: string, cidr: string): Promise<string[]> {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  const at = Date.now() + 1500;
  return Promise.all(
    Array.from({ length: n }, (_, i) => new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ['-e', CHILD, dir, cidr, `ctr${i}`, String(at)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d));
      p.stderr.on('data', (d: Buffer) => (err += d));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child ${i} exited ${code}: ${err}`))));
    })),
  );
}

test('50 processes allocating in parallel never get the same address', async () => {
  const dir = path.join(tmp(), 'podnet');
  const got = await runChildren(50, dir, '10.244.7.0/24');
  assert.ok(got.every((ip) => /^10\.244\.7\.\d+$/.test(ip)), got.join(' '));
  assert.equal(new Set(got).size, 50, `duplicates: ${got.sort().join(' ')}`);
  assert.ok(!got.includes('10.244.7.0') && !got.includes('10.244.7.1') && !got.includes('10.244.7.255'));
  const files = listAllocations(dir);
  assert.equal(files.length, 50);
  // Every file names the process that got that address.
  assert.deepEqual(new Set(files.map((f) => f.owner?.containerId)).size, 50);
});

test('60 processes racing for 29 addresses: exactly 29 win, the rest get the exhaustion error', async () => {
  const dir = tmp();
  const got = await runChildren(60, dir, '10.9.0.0/27'); // 32 - network - gateway - broadcast = 29
  const ok = got.filter((g) => !g.startsWith('ERR'));
  assert.equal(ok.length, 29);
  assert.equal(new Set(ok).size, 29);
  assert.ok(got.filter((g) => g.startsWith('ERR')).every((g) => g === 'ERR ERR_CNI_IPAM_EXHAUSTED'), got.join(' '));
});

test('50 allocations from concurrent async contexts in one process are unique too', async () => {
  const dir = tmp();
  const got = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
    await new Promise((r) => setImmediate(r));
    return formatIp4(allocate(dir, net24, gw24, owner(i)));
  }));
  assert.equal(new Set(got).size, 50);
});
