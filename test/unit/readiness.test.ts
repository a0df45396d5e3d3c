import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { NetworkConfigError } from '../../src/config/network';
import { SubnetError, etcdError } from '../../src/subnet/errors';
import { errorLine, etcdBlocker, formatBlocker, invalidConfigBlocker, missingConfigBlocker, readinessOf, stepBlocker } from '../../src/daemon/readiness';

const base = { leaseHeld: true, everConverged: true, converging: false, subnetFileInSync: true, subnetFile: '/run/twill/subnet.env', blocker: undefined };

test('ready only with lease, converged dataplane and the subnet file on disk', () => {
  assert.deepEqual(readinessOf(base), { ok: true, reasons: [], blocking: undefined });
  const r = readinessOf({ ...base, subnetFileInSync: false });
  assert.equal(r.ok, false);
  assert.deepEqual(r.reasons, ['subnet file /run/twill/subnet.env not written']);
});

test('etcd down: the blocker names the endpoint and the cause, and says what to check', () => {
  const err = etcdError('get config', new Error('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 172.30.0.1:2399. Resolution note: '));
  const b = etcdBlocker(['http://172.30.0.1:2399'], err);
  assert.equal(b.subject, 'etcd http://172.30.0.1:2399');
  assert.equal(b.error, 'etcd get config failed: connect ECONNREFUSED 172.30.0.1:2399');
  assert.match(b.next, /--etcd-endpoints/);
  const r = readinessOf({ ...base, leaseHeld: false, everConverged: false, subnetFileInSync: false, blocker: b });
  assert.equal(r.blocking, b);
  assert.match(formatBlocker(b), /^etcd http:\/\/172\.30\.0\.1:2399: etcd get config failed: connect ECONNREFUSED 172\.30\.0\.1:2399; next: check/);
});

test('network config: the missing key or the bad field is the subject', () => {
  assert.equal(missingConfigBlocker('/coreos.com/network/config').subject, 'network config /coreos.com/network/config');
  const b = invalidConfigBlocker('/coreos.com/network/config', new NetworkConfigError('SubnetLen', '33 is out of range'));
  assert.equal(b.subject, 'network config /coreos.com/network/config field SubnetLen');
  assert.equal(b.error, 'network config SubnetLen: 33 is out of range');
});

test('other steps: out of subnets and the underlay get their own next step; causes are kept in one line', () => {
  assert.match(stepBlocker('acquire lease', new SubnetError('ERR_OUT_OF_SUBNETS', 'out of subnets')).next, /widen Network/);
  const underlay = Object.assign(new Error('interface eth9 (--iface) does not exist'), { code: 'ERR_UNDERLAY' });
  assert.match(stepBlocker('underlay', underlay).next, /--iface/);
  assert.equal(errorLine(new Error('cannot write subnet file /x', { cause: new Error('EACCES: permission denied') })), 'cannot write subnet file /x: EACCES: permission denied');
  assert.equal(errorLine(new Error('a: b', { cause: new Error('b') })), 'a: b');
});
