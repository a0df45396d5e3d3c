// The per-peer health state machine: reachable / mtu / unreachable after N missed rounds,
// recovery on one answer, transitions reported once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyRound, newPeerHealth, type PeerHealth, type Transition } from '../../src/probe/health';

function run(rounds: Array<[number | null, number | null]>, failures = 3): { h: PeerHealth; transitions: Transition[] } {
  const h = newPeerHealth(0);
  const transitions: Transition[] = [];
  rounds.forEach(([small, full], i) => {
    const t = applyRound(h, { smallRttMs: small, fullRttMs: full, at: (i + 1) * 1000 }, failures);
    if (t) transitions.push(t);
  });
  return { h, transitions };
}

test('answered small and full probes: ok, with rtt and last success', () => {
  const { h, transitions } = run([[0.4, 0.6]]);
  assert.equal(h.status, 'ok');
  assert.equal(h.rttMs, 0.4);
  assert.equal(h.lastSuccess, 1000);
  assert.deepEqual(transitions, [{ from: 'unknown', to: 'ok' }]);
});

test('full-size probes lost while small ones pass: mtu after 3 rounds, logged once', () => {
  const { h, transitions } = run([[0.4, 0.6], [0.4, null], [0.4, null], [0.4, null], [0.4, null], [0.4, null]]);
  assert.equal(h.status, 'mtu');
  assert.equal(h.reachable, true);
  assert.equal(h.mtuOk, false);
  assert.equal(h.since, 4000);
  assert.deepEqual(transitions, [{ from: 'unknown', to: 'ok' }, { from: 'ok', to: 'mtu' }]);
});

test('nothing answered: unreachable after 3 rounds; one answer recovers', () => {
  const { h, transitions } = run([[0.4, 0.5], [null, null], [null, null], [null, null], [null, null], [0.3, 0.5]]);
  assert.equal(h.status, 'ok');
  assert.equal(h.lastSuccess, 6000);
  assert.deepEqual(transitions, [{ from: 'unknown', to: 'ok' }, { from: 'ok', to: 'unreachable' }, { from: 'unreachable', to: 'ok' }]);
});

test('two missed rounds are not yet a problem; a new peer that never answers becomes unreachable', () => {
  assert.equal(run([[0.4, 0.5], [null, null], [null, null]]).h.status, 'ok');
  assert.equal(run([[null, null], [null, null]]).h.status, 'unknown');
  assert.equal(run([[null, null], [null, null], [null, null]]).h.status, 'unreachable');
});

test('a full-size answer alone proves reachability too', () => {
  const { h } = run([[null, 0.7]]);
  assert.equal(h.status, 'ok');
  assert.equal(h.rttMs, null);
});
