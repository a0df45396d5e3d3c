import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/network';
import { parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import { decodeLease, encodeLeaseValue, leaseEquals, leaseValuePublicIp, parseSubnetKey, subnetKey, type Lease as AnyLease, type LeaseSkipReason } from '../../src/subnet/lease';
import { vxlanCodec, type VxlanData } from '../../src/backends/vxlan/codec';
import { hostGwCodec } from '../../src/backends/host-gw/backend';

type Lease = AnyLease<VxlanData>;

const PREFIX = '/coreos.com/network';
const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
const ctx = { prefix: PREFIX, config, codec: vxlanCodec };

const lease: Lease = { subnet: parsePrefix4('10.244.7.0/24'), publicIp: parseIp4('192.168.50.11'), publicIpv6: null, backendType: 'vxlan', backendData: { vni: 1, vtepMac: '0e:11:22:33:44:55' } };
const KEY = '/coreos.com/network/subnets/10.244.7.0-24';
const VALUE = '{"PublicIP":"192.168.50.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:11:22:33:44:55"}}';

function skip(key: string, value: string, reason: LeaseSkipReason, extra: Partial<typeof ctx> & { own?: Lease } = {}): void {
  const r = decodeLease(key, value, { ...ctx, ...extra });
  assert.equal(r.ok, false, `expected ${reason} for ${key} = ${value}`);
  if (!r.ok) {
    assert.equal(r.reason, reason, r.detail);
    assert.ok(r.detail.length > 0);
  }
}

function value(patch: Record<string, unknown>, data: Record<string, unknown> = {}): string {
  return JSON.stringify({ PublicIP: '192.168.50.12', PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '0e:aa:bb:cc:dd:ee', ...data }, ...patch });
}

test('subnetKey / parseSubnetKey use flannel layout', () => {
  assert.equal(subnetKey(PREFIX, lease.subnet), KEY);
  assert.deepEqual(parseSubnetKey(PREFIX, KEY), lease.subnet);
  assert.deepEqual(parseSubnetKey('/x', '/x/subnets/10.0.0.0-8'), parsePrefix4('10.0.0.0/8'));
  assert.equal(parseSubnetKey(PREFIX, '/other/subnets/10.244.7.0-24'), null);
  assert.equal(parseSubnetKey(PREFIX, '/coreos.com/network/config'), null);
  assert.equal(parseSubnetKey(PREFIX, '/coreos.com/network/subnets/10.244.7.0/24'), null);
  assert.equal(parseSubnetKey(PREFIX, '/coreos.com/network/subnets/10.244.7.5-24'), null); // host bits set
  assert.equal(parseSubnetKey(PREFIX, '/coreos.com/network/subnets/10.244.7.0-33'), null);
  assert.equal(parseSubnetKey(PREFIX, '/coreos.com/network/subnets/10.244.7.0-24&fc00::-64'), null);
  assert.equal(parseSubnetKey(PREFIX, '/coreos.com/network/subnets/x10.244.7.0-24'), null);
  assert.equal(parseSubnetKey(PREFIX, '/coreos.com/network/subnets/10.244.07.0-24'), null);
});

test("encodeLeaseValue writes flannel's exact JSON", () => {
  assert.equal(encodeLeaseValue(lease, vxlanCodec), VALUE);
});

test('JSON round-trip', () => {
  const r = decodeLease(KEY, encodeLeaseValue(lease, vxlanCodec), ctx);
  assert.ok(r.ok);
  if (r.ok) assert.ok(leaseEquals(r.lease, lease, vxlanCodec));
});

test('decodes a value written by flannel, including extra fields and Go-style key case', () => {
  const r = decodeLease(KEY, '{"PublicIP":"192.168.50.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0E:11:22:33:44:55"},"BackendV6Data":null}', ctx);
  assert.ok(r.ok);
  if (r.ok) assert.deepEqual(r.lease, lease);
  const lower = decodeLease(KEY, '{"publicip":"192.168.50.11","backendtype":"vxlan","backenddata":{"vni":1,"vtepmac":"0e:11:22:33:44:55"}}', ctx);
  assert.ok(lower.ok);
});

test('skip reason: bad-key', () => {
  skip('/coreos.com/network/subnets/garbage', VALUE, 'bad-key');
  skip('/coreos.com/network/subnets/10.244.7.1-24', VALUE, 'bad-key');
  skip('/elsewhere/subnets/10.244.7.0-24', VALUE, 'bad-key');
});

test('skip reason: outside-network', () => {
  skip('/coreos.com/network/subnets/10.245.7.0-24', VALUE, 'outside-network');
  skip('/coreos.com/network/subnets/10.0.0.0-8', VALUE, 'outside-network');
});

test('skip reason: subnet-length', () => {
  skip('/coreos.com/network/subnets/10.244.7.0-25', VALUE, 'subnet-length');
  skip('/coreos.com/network/subnets/10.244.0.0-20', VALUE, 'subnet-length');
});

test('skip reason: bad-json', () => {
  skip(KEY, '{', 'bad-json');
  skip(KEY, '', 'bad-json');
  skip(KEY, '[1,2]', 'bad-json');
  skip(KEY, '"x"', 'bad-json');
});

test('skip reason: wrong-backend', () => {
  skip(KEY, value({ BackendType: 'udp' }), 'wrong-backend');
  skip(KEY, value({ BackendType: 'host-gw' }), 'wrong-backend');
  skip(KEY, value({ BackendType: undefined }), 'wrong-backend');
});

test('skip reason: bad-public-ip', () => {
  skip(KEY, value({ PublicIP: '192.168.50' }), 'bad-public-ip');
  skip(KEY, value({ PublicIP: 42 }), 'bad-public-ip');
  skip(KEY, value({ PublicIP: undefined }), 'bad-public-ip');
  skip(KEY, value({ PublicIP: '0.0.0.0' }), 'bad-public-ip');
  skip(KEY, value({ PublicIP: '239.1.1.1' }), 'bad-public-ip');
  skip(KEY, value({ PublicIP: '255.255.255.255' }), 'bad-public-ip');
});

test('skip reason: bad-mac', () => {
  skip(KEY, value({}, { VtepMAC: 'zz:11:22:33:44:55' }), 'bad-mac');
  skip(KEY, value({}, { VtepMAC: '01:00:5e:00:00:01' }), 'bad-mac');
  skip(KEY, value({}, { VtepMAC: undefined }), 'bad-mac');
  skip(KEY, value({ BackendData: undefined }), 'bad-mac');
  skip(KEY, value({ BackendData: 'nope' }), 'bad-mac');
});

test('skip reason: wrong-vni', () => {
  skip(KEY, value({}, { VNI: 2 }), 'wrong-vni');
  skip(KEY, value({}, { VNI: undefined }), 'wrong-vni');
  skip(KEY, value({}, { VNI: '1' }), 'wrong-vni');
  const vni7 = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":7}}');
  skip(KEY, VALUE, 'wrong-vni', { config: vni7 });
  const ok = decodeLease(KEY, value({}, { VNI: 7 }), { ...ctx, config: vni7 });
  assert.ok(ok.ok);
  if (ok.ok) assert.equal(ok.lease.backendData.vni, 7);
});

test('skip reason: overlaps-own (our subnet, another PublicIP); our own lease decodes fine', () => {
  skip(KEY, value({ PublicIP: '192.168.50.99' }), 'overlaps-own', { own: lease });
  const mine = decodeLease(KEY, VALUE, { ...ctx, own: lease });
  assert.ok(mine.ok);
  const other = decodeLease('/coreos.com/network/subnets/10.244.8.0-24', value({ PublicIP: '192.168.50.99' }), { ...ctx, own: lease });
  assert.ok(other.ok);
});

test('skip reason: overlaps-own also for a piece of our subnet of another length (its route would steal our pods)', () => {
  skip('/coreos.com/network/subnets/10.244.7.128-25', value({ PublicIP: '192.168.50.99' }), 'overlaps-own', { own: lease });
  skip('/coreos.com/network/subnets/10.244.0.0-20', value({ PublicIP: '192.168.50.99' }), 'overlaps-own', { own: lease });
  // Not overlapping ours, or naming our own PublicIP: just the wrong length.
  skip('/coreos.com/network/subnets/10.244.8.128-25', value({ PublicIP: '192.168.50.99' }), 'subnet-length', { own: lease });
  skip('/coreos.com/network/subnets/10.244.7.128-25', VALUE, 'subnet-length', { own: lease });
});

test('decodeLease never throws on odd input', () => {
  const odd = ['null', 'true', '1e999', '{"PublicIP":{}}', '{"BackendType":"vxlan","PublicIP":"1.2.3.4","BackendData":null}', '\u0000', '{"__proto__":{"PublicIP":"1.2.3.4"}}'];
  for (const v of odd) {
    const r = decodeLease(KEY, v, ctx);
    assert.equal(r.ok, false, v);
  }
});

test('leaseValuePublicIp reads only the PublicIP', () => {
  assert.equal(leaseValuePublicIp(VALUE), parseIp4('192.168.50.11'));
  assert.equal(leaseValuePublicIp('{"PublicIP":"192.168.50.11","BackendType":"udp"}'), parseIp4('192.168.50.11'));
  assert.equal(leaseValuePublicIp('{'), null);
  assert.equal(leaseValuePublicIp('{"PublicIP":"x"}'), null);
  assert.equal(leaseValuePublicIp('[]'), null);
});

test("host-gw lease: flannel's exact JSON (no BackendData), decoded by the host-gw codec only", () => {
  const hg: AnyLease<Record<string, never>> = { subnet: lease.subnet, publicIp: lease.publicIp, publicIpv6: null, backendType: 'host-gw', backendData: {} };
  const text = '{"PublicIP":"192.168.50.11","PublicIPv6":null,"BackendType":"host-gw"}';
  assert.equal(encodeLeaseValue(hg, hostGwCodec), text);
  const hgCtx = { prefix: PREFIX, config: parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}'), codec: hostGwCodec };
  for (const v of [text, '{"PublicIP":"192.168.50.11","BackendType":"host-gw","BackendData":null}', '{"publicip":"192.168.50.11","backendtype":"host-gw"}']) {
    const r = decodeLease(KEY, v, hgCtx);
    assert.ok(r.ok, v);
    if (r.ok) assert.deepEqual(r.lease, hg);
  }
  // Each backend skips the other's leases: hosts on different backends cannot reach each other.
  const asVxlan = decodeLease(KEY, text, ctx);
  assert.equal(asVxlan.ok, false);
  if (!asVxlan.ok) assert.equal(asVxlan.reason, 'wrong-backend');
  const asHostGw = decodeLease(KEY, VALUE, hgCtx);
  assert.equal(asHostGw.ok, false);
  if (!asHostGw.ok) assert.equal(asHostGw.reason, 'wrong-backend');
  const badIp = decodeLease(KEY, '{"PublicIP":"224.0.0.1","PublicIPv6":null,"BackendType":"host-gw"}', hgCtx);
  assert.equal(badIp.ok ? 'ok' : badIp.reason, 'bad-public-ip');
});

test('the canonical fast path and the general path decode alike', () => {
  const general = VALUE.replace('{"PublicIP"', '{ "PublicIP"');
  const a = decodeLease(KEY, VALUE, ctx);
  const b = decodeLease(KEY, general, ctx);
  assert.ok(a.ok && b.ok);
  if (a.ok && b.ok) assert.deepEqual(a.lease, b.lease);
  // A canonical text the fast path declines (another VNI) still gets its reason from the general path.
  skip(KEY, VALUE.replace('"VNI":1', '"VNI":2'), 'wrong-vni');
});
