// Fault suite (issue 5), case 5: the subnet race. 50 contenders — the daemon's real
// EtcdRegistry, 10 per process in 5 processes — call acquire() at the same instant against a
// real etcd for a network with fewer subnets than contenders. Repeated for several rounds.
// Oracle: etcd's own content (every key held by exactly one contender that believes it won).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { startEtcd, etcdPut, type TestEtcd } from '../support/etcd';
import { Etcd3 } from 'etcd3';
import { parseNetworkConfig } from '../../src/config/network';
import { candidateCount } from '../../src/subnet/allocator';
import { recordFigure } from '../support/faults';

const WORKER = path.resolve(__dirname, '../support/subnet-race-worker.js');
const PROCS = 5;
const PER_PROC = 10;
const ROUNDS = 3;
const NETWORK = '{"Network":"10.10.0.0/24","SubnetLen":28,"Backend":{"Type":"vxlan","VNI":1}}';

let etcd: TestEtcd;

before(async () => {
  etcd = await startEtcd();
});

after(async () => {
  await etcd?.stop();
});

interface Outcome {
  n: number;
  ok: boolean;
  subnet?: string;
  code?: string;
  message?: string;
  conflicts: number;
  ms: number;
  fatal?: string;
}

function runWorker(args: object): Promise<Outcome[]> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env['NODE_EXTRA_CA_CERTS'];
    const p = spawn(process.execPath, [WORKER, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const rows = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Outcome);
      const fatal = rows.find((r) => r.fatal);
      if (code !== 0 || fatal) reject(new Error(`race worker failed (${code}): ${fatal?.fatal ?? ''} ${err}`));
      else resolve(rows);
    });
  });
}

test('case 5: 50 contenders race for a small network: 0 duplicates, losers get ERR_OUT_OF_SUBNETS', { timeout: 180_000 }, async () => {
  const capacity = candidateCount(parseNetworkConfig(NETWORK));
  let duplicates = 0;
  let winners = 0;
  let losers = 0;
  let badLosers = 0;
  let conflicts = 0;
  let slowest = 0;
  const messages = new Set<string>();
  for (let round = 0; round < ROUNDS; round++) {
    const prefix = `/twill-race/r${round}`;
    await etcdPut(etcd.endpoint, `${prefix}/config`, NETWORK);
    const startAt = Date.now() + 1500;
    const outcomes = (
      await Promise.all(Array.from({ length: PROCS }, (_, p) => runWorker({ endpoint: etcd.endpoint, prefix, first: round * 1000 + p * PER_PROC, count: PER_PROC, startAt })))
    ).flat();
    assert.equal(outcomes.length, PROCS * PER_PROC);
    const won = outcomes.filter((o) => o.ok);
    const lost = outcomes.filter((o) => !o.ok);
    const bySubnet = new Map<string, number>();
    for (const o of won) bySubnet.set(o.subnet!, (bySubnet.get(o.subnet!) ?? 0) + 1);
    duplicates += [...bySubnet.values()].filter((c) => c > 1).reduce((a, c) => a + c - 1, 0);
    winners += won.length;
    losers += lost.length;
    badLosers += lost.filter((o) => o.code !== 'ERR_OUT_OF_SUBNETS').length;
    conflicts += outcomes.reduce((a, o) => a + o.conflicts, 0);
    slowest = Math.max(slowest, ...outcomes.map((o) => o.ms));
    for (const o of lost) messages.add(`${o.code}: ${o.message}`);

    // etcd agrees: exactly `capacity` keys, each naming the contender that believes it won it.
    const c = new Etcd3({ hosts: [etcd.endpoint] });
    try {
      const kvs = await c.getAll().prefix(`${prefix}/subnets/`).strings();
      assert.equal(Object.keys(kvs).length, capacity, `round ${round}: keys in etcd`);
      for (const o of won) {
        const v = kvs[`${prefix}/subnets/${o.subnet!.replace('/', '-')}`];
        assert.ok(v, `round ${round}: ${o.subnet} is in etcd`);
        const ip = JSON.parse(v).PublicIP as string;
        assert.equal(Number(ip.split('.')[3]) - 1 + Number(ip.split('.')[2]) * 250, o.n, `round ${round}: ${o.subnet} held by its winner`);
      }
    } finally {
      c.close();
    }
    assert.equal(won.length, capacity, `round ${round}: every subnet won once`);
  }
  recordFigure({
    id: '5',
    case: `subnet race: ${PROCS}×${PER_PROC} contenders for ${capacity} subnets, ${ROUNDS} rounds`,
    figure: `${duplicates} duplicates; ${winners} winners, ${losers} losers (${badLosers} without ERR_OUT_OF_SUBNETS); ${conflicts} ERR_LEASE_CONFLICT retries; slowest contender ${(slowest / 1000).toFixed(2)} s`,
    goal: '0 duplicates, every loser ERR_OUT_OF_SUBNETS',
    pass: duplicates === 0 && badLosers === 0,
  });
  console.log(`losers' errors: ${[...messages].join(' | ')}`);
  assert.equal(duplicates, 0);
  assert.equal(badLosers, 0, [...messages].join('\n'));
});
