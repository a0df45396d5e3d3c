import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observe/log';
import { PeerLog } from '../../src/daemon/peer-log';
import { parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import type { Lease } from '../../src/subnet/lease';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger('info', stream), lines };
}

function lease(n: number, mac = `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`): Lease {
  return { subnet: parsePrefix4(`10.244.${n}.0/24`), publicIp: parseIp4(`172.30.0.${n}`), publicIpv6: null, backendType: 'vxlan', backendData: { vni: 1, vtepMac: mac } };
}

test('peers joining, changing and leaving are each logged once; the first set is one summary', () => {
  const c = capture();
  const p = new PeerLog(c.log);
  p.update([lease(1), lease(2)], undefined);
  assert.deepEqual(c.lines.map((l) => [l['msg'], l['peers']]), [['peers known at start', 2]]);
  p.update([lease(1), lease(2)], [lease(1), lease(2)]); // the same set again: nothing
  p.update([lease(1), lease(2), lease(3)], [lease(1), lease(2)]);
  p.update([lease(1, '0e:aa:aa:aa:aa:aa'), lease(3)], [lease(1), lease(2), lease(3)]);
  assert.deepEqual(
    c.lines.slice(1).map((l) => [l['msg'], l['subnet'], l['publicIp']]),
    [
      ['peer joined', '10.244.3.0/24', '172.30.0.3'],
      ['peer changed its public IP or backend data', '10.244.1.0/24', '172.30.0.1'],
      ['peer left', '10.244.2.0/24', '172.30.0.2'],
    ],
  );
});

test('a large change at once is one line with a count', () => {
  const c = capture();
  const p = new PeerLog(c.log);
  p.update([], undefined);
  p.update(Array.from({ length: 50 }, (_, i) => lease(i + 1)), []);
  assert.equal(c.lines.length, 2);
  assert.equal(c.lines[1]!['msg'], '50 peers joined');
  assert.equal(c.lines[1]!['count'], 50);
});

test('one event at a time (the daemon\'s incremental path): each join, change and leave logged once, no copy of the set kept', () => {
  const c = capture();
  const p = new PeerLog(c.log);
  p.apply({ joined: [lease(9)], left: [], changed: [] }, 1); // before the first set: nothing to say yet
  p.update([lease(1), lease(2)], undefined);
  p.apply({ joined: [lease(3)], left: [], changed: [] }, 3);
  p.apply({ joined: [], left: [], changed: [lease(1, '0e:aa:aa:aa:aa:aa')] }, 3);
  p.apply({ joined: [], left: [lease(2)], changed: [] }, 2);
  assert.deepEqual(
    c.lines.map((l) => [l['msg'], l['subnet'], l['publicIp']]),
    [
      ['peers known at start', undefined, undefined],
      ['peer joined', '10.244.3.0/24', '172.30.0.3'],
      ['peer changed its public IP or backend data', '10.244.1.0/24', '172.30.0.1'],
      ['peer left', '10.244.2.0/24', '172.30.0.2'],
    ],
  );
  // A full set afterwards is compared with the set before it: only the real difference.
  p.update([lease(1, '0e:aa:aa:aa:aa:aa'), lease(3), lease(4)], [lease(1, '0e:aa:aa:aa:aa:aa'), lease(3)]);
  assert.deepEqual(c.lines.slice(4).map((l) => [l['msg'], l['subnet']]), [['peer joined', '10.244.4.0/24']]);
});
