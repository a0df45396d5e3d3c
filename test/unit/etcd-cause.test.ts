import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CauseMemory, etcdCauseOf } from '../../src/subnet/etcd-cause';
import { etcdError } from '../../src/subnet/errors';

// The client's errors as etcd3 1.1.2 throws them (seen against a refused endpoint).
const refused = new Error('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 172.30.0.1:2399. Resolution note: ');
const breaker = Object.assign(new Error('Execution prevented because the circuit breaker is open'), { isBrokenCircuitError: true });

test('the cause is unwrapped from gRPC UNAVAILABLE: endpoint and errno in one line', () => {
  assert.deepEqual(etcdCauseOf(refused), { breaker: false, text: 'connect ECONNREFUSED 172.30.0.1:2399' });
  assert.deepEqual(etcdCauseOf(new Error('14 UNAVAILABLE: read ECONNRESET')), { breaker: false, text: 'read ECONNRESET' });
  assert.equal(etcdCauseOf(new Error('Deadline exceeded after 10.000s')).text, 'Deadline exceeded after 10.000s');
  assert.equal(etcdCauseOf(breaker).breaker, true);
});

test('the circuit breaker answer is replaced by the last real cause', () => {
  const m = new CauseMemory();
  assert.match(m.describe(breaker, 0), /^unreachable \(the etcd client paused calls/);
  assert.equal(m.describe(refused, 1000), 'connect ECONNREFUSED 172.30.0.1:2399');
  assert.equal(m.describe(breaker, 2000), 'connect ECONNREFUSED 172.30.0.1:2399');
  // A cause from long ago is not passed off as the current one.
  assert.match(m.describe(breaker, 120_000), /^unreachable/);
});

test('etcdError: the first line names the endpoint and the cause, also while the breaker is open', () => {
  assert.equal(etcdError('get config', refused).message, 'etcd get config failed: connect ECONNREFUSED 172.30.0.1:2399');
  const e = etcdError('get config', breaker);
  assert.equal(e.message, 'etcd get config failed: connect ECONNREFUSED 172.30.0.1:2399');
  assert.equal(e.cause, breaker);
});
