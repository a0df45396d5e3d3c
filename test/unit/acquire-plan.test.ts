// The pure acquire plan (src/subnet/acquire-plan.ts): which subnet a host takes from one listing,
// without etcd: own key by PublicIP first, then the preferred subnet, then a random free one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/network';
import { formatPrefix4, parseIp4, parsePrefix4, type Prefix4 } from '../../src/ip/ipv4';
import { planAcquire, type AcquireChoice, type ListedKey } from '../../src/subnet/acquire-plan';
import { encodeLeaseValue, parseSubnetKey, subnetKey } from '../../src/subnet/lease';
import { vxlanCodec } from '../../src/backends/vxlan/codec';

const PREFIX = '/coreos.com/network';
const config = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetLen":24}');
const ME = parseIp4('172.30.0.11');
const OTHER = parseIp4('172.30.0.12');

let rev = 100;
function entry(subnet: string, publicIp: number, value?: string): ListedKey {
  const s = parsePrefix4(subnet);
  const key = subnetKey(PREFIX, s);
  return {
    key,
    value: value ?? encodeLeaseValue({ subnet: s, publicIp, publicIpv6: null, backendType: 'vxlan', backendData: { vni: 1, vtepMac: '0e:00:00:00:00:01' } }, vxlanCodec),
    subnet: parseSubnetKey(PREFIX, key),
    modRevision: String(rev++),
    lease: '7587870391934468874',
  };
}

function show(c: AcquireChoice): string {
  return c.kind === 'full' ? 'full' : `${c.kind} ${formatPrefix4(c.subnet)}${c.kind === 'create' ? ` (${c.from})` : ''}`;
}

const never = (): number => {
  throw new Error('random must not be drawn');
};

test('our own key (found by PublicIP) is reused, whatever else is preferred', () => {
  const listed = [entry('10.244.1.0/24', OTHER), entry('10.244.9.0/24', ME), entry('10.244.3.0/24', OTHER)];
  const plan = planAcquire({ config, publicIp: ME, preferred: parsePrefix4('10.244.50.0/24') }, listed, never);
  assert.equal(show(plan.choice), 'reuse 10.244.9.0/24');
  assert.equal(plan.choice.kind === 'reuse' && plan.choice.entry, listed[1]);
  assert.deepEqual([plan.deleteStale, plan.duplicates, plan.preferredMisfit], [[], [], null]);
});

test('a non-canonical value (escapes, other key order) still names our PublicIP', () => {
  const escaped = '{"BackendType":"vxlan","PublicIP":"172.30.0.\\u00311","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}}';
  const plan = planAcquire({ config, publicIp: ME }, [entry('10.244.4.0/24', ME, escaped)], never);
  assert.equal(show(plan.choice), 'reuse 10.244.4.0/24');
});

test('an own key outside the config is deleted (at its revision); a second one is left, in key order', () => {
  const outside = entry('10.245.1.0/24', ME); // not in 10.244.0.0/16
  const a = entry('10.244.2.0/24', ME);
  const b = entry('10.244.7.0/24', ME);
  const plan = planAcquire({ config, publicIp: ME }, [b, outside, a], never);
  assert.equal(show(plan.choice), 'reuse 10.244.2.0/24', 'the first in key order wins');
  assert.deepEqual(plan.deleteStale, [outside]);
  assert.deepEqual(plan.duplicates, [b]);
});

test('without an own key: the preferred subnet when free and fitting', () => {
  const listed = [entry('10.244.1.0/24', OTHER)];
  const plan = planAcquire({ config, publicIp: ME, preferred: parsePrefix4('10.244.8.0/24') }, listed, never);
  assert.equal(show(plan.choice), 'create 10.244.8.0/24 (preferred)');
});

test('a preferred subnet that is taken, or overlaps a lease, falls back to a random free one', () => {
  for (const lease of ['10.244.1.0/24', '10.244.0.0/23']) {
    const listed = [entry(lease, OTHER)];
    const plan = planAcquire({ config, publicIp: ME, preferred: parsePrefix4('10.244.1.0/24') }, listed, () => 0);
    assert.equal(plan.choice.kind === 'create' && plan.choice.from, 'random', lease);
    const got = plan.choice.kind === 'create' ? plan.choice.subnet : null;
    assert.ok(got && !['10.244.0.0/24', '10.244.1.0/24'].includes(formatPrefix4(got)), lease);
    assert.equal(plan.preferredMisfit, null);
  }
});

test('a preferred subnet that does not fit the config is reported and ignored', () => {
  const preferred = parsePrefix4('192.168.1.0/24');
  const plan = planAcquire({ config, publicIp: ME, preferred }, [], () => 0);
  assert.equal(plan.preferredMisfit, preferred);
  assert.equal(plan.choice.kind === 'create' && plan.choice.from, 'random');
});

test('random choice avoids every listed subnet; none free is "full"', () => {
  const small = parseNetworkConfig('{"Network":"10.5.0.0/24","SubnetLen":28}'); // 15 subnets
  const taken: ListedKey[] = [];
  for (let i = 1; i <= 15; i++) {
    const s: Prefix4 = { ip: parseIp4('10.5.0.0') + 16 * i, len: 28 };
    if (i !== 7) taken.push(entry(formatPrefix4(s), OTHER));
  }
  for (let r = 0; r < 20; r++) {
    const plan = planAcquire({ config: small, publicIp: ME }, taken, Math.random);
    assert.equal(show(plan.choice), 'create 10.5.0.112/28 (random)');
  }
  taken.push(entry('10.5.0.112/28', OTHER));
  assert.equal(show(planAcquire({ config: small, publicIp: ME }, taken, Math.random).choice), 'full');
});

test('keys that are not leases are ignored, and the input is not reordered', () => {
  const junk: ListedKey = { key: `${PREFIX}/subnets/not-a-subnet`, value: '{"PublicIP":"172.30.0.11"}', subnet: null, modRevision: '1', lease: '0' };
  const listed = [entry('10.244.9.0/24', OTHER), junk, entry('10.244.1.0/24', OTHER)];
  const copy = [...listed];
  const plan = planAcquire({ config, publicIp: ME, preferred: parsePrefix4('10.244.5.0/24') }, listed, never);
  assert.equal(show(plan.choice), 'create 10.244.5.0/24 (preferred)');
  assert.deepEqual(listed, copy);
});
