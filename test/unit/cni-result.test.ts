// Result formatting per CNI version, and reading prevResult back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatResult, mergeResults, parseResult, type CniResult } from '../../src/cni/result';
import { CniError } from '../../src/cni/errors';

const result: CniResult = {
  interfaces: [
    { name: 'tw0123456789a', mac: '0e:01:02:03:04:05', mtu: 1450 },
    { name: 'eth0', mac: '0a:58:0a:f4:07:02', mtu: 1450, sandbox: '/run/netns/pod' },
  ],
  ips: [{ address: '10.244.7.2/24', gateway: '10.244.7.1', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.244.7.1' }],
  dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] },
};

test('0.3.0, 0.3.1 and 0.4.0 results carry ips[].version "4"', () => {
  for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
    const out = formatResult(result, v);
    assert.equal(out['cniVersion'], v);
    assert.deepEqual(out['ips'], [{ version: '4', interface: 1, address: '10.244.7.2/24', gateway: '10.244.7.1' }]);
    assert.deepEqual(out['interfaces'], [
      { name: 'tw0123456789a', mac: '0e:01:02:03:04:05' },
      { name: 'eth0', mac: '0a:58:0a:f4:07:02', sandbox: '/run/netns/pod' },
    ]);
  }
});

test('1.0.0 results have no ips[].version and no interface mtu', () => {
  const out = formatResult(result, '1.0.0');
  assert.deepEqual(out, {
    cniVersion: '1.0.0',
    interfaces: [
      { name: 'tw0123456789a', mac: '0e:01:02:03:04:05' },
      { name: 'eth0', mac: '0a:58:0a:f4:07:02', sandbox: '/run/netns/pod' },
    ],
    ips: [{ interface: 1, address: '10.244.7.2/24', gateway: '10.244.7.1' }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.244.7.1' }],
    dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] },
  });
  assert.ok(!JSON.stringify(out).includes('"version"'));
});

test('1.1.0 results report interface MTUs', () => {
  const out = formatResult(result, '1.1.0') as { interfaces: Array<{ mtu?: number }>; ips: Array<Record<string, unknown>> };
  assert.deepEqual(out.interfaces.map((i) => i.mtu), [1450, 1450]);
  assert.equal(out.ips[0]!['version'], undefined);
});

test('empty dns is printed as {} like libcni', () => {
  assert.deepEqual(formatResult({ ...result, dns: {} }, '1.0.0')['dns'], {});
});

test('parseResult reads every version back to the same value', () => {
  for (const v of ['0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const back = parseResult(JSON.parse(JSON.stringify(formatResult(result, v))) as Record<string, unknown>);
    assert.deepEqual(back.ips, result.ips);
    assert.deepEqual(back.routes, result.routes);
    assert.deepEqual(back.interfaces.map((i) => i.name), ['tw0123456789a', 'eth0']);
    assert.equal(back.interfaces[1]!.sandbox, '/run/netns/pod');
  }
});

test('parseResult rejects malformed prevResults with error 7 naming the field', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ interfaces: {} }, 'prevResult.interfaces'],
    [{ interfaces: [{ mac: 'x' }] }, 'prevResult.interfaces[0].name'],
    [{ ips: [{ address: 5 }] }, 'prevResult.ips[0].address'],
    [{ ips: [{ address: '10.0.0.1/8', interface: -1 }] }, 'prevResult.ips[0].interface'],
    [{ routes: [{ gw: '1.1.1.1' }] }, 'prevResult.routes[0].dst'],
    [{ routes: ['x'] }, 'prevResult.routes[0]'],
  ];
  for (const [raw, field] of cases) {
    assert.throws(
      () => parseResult(raw),
      (err: unknown) => err instanceof CniError && err.cniCode === 7 && err.details === field,
      field,
    );
  }
});

test('mergeResults appends after an earlier plugin and shifts interface indexes', () => {
  const prev: CniResult = { interfaces: [{ name: 'other0' }], ips: [{ address: 'fd00::2/64', interface: 0 }], routes: [], dns: { domain: 'x' } };
  const m = mergeResults(prev, result);
  assert.deepEqual(m.interfaces.map((i) => i.name), ['other0', 'tw0123456789a', 'eth0']);
  assert.deepEqual(m.ips.map((i) => i.interface), [0, 2]);
  assert.deepEqual(m.dns, result.dns);
  assert.equal(mergeResults(undefined, result), result);
});
