// A prober whose socket cannot be opened (the native addon lacks udpOpen, the address is not
// on the device yet) reports the error and retries; it never throws into the daemon's timers.
// Found when a daemon built against an older addon died with an uncaught TypeError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prober } from '../../src/probe/prober';
import { parseIp4 } from '../../src/ip/ipv4';

test('an opener that throws synchronously is reported and retried, never thrown', async () => {
  const errors: Error[] = [];
  let attempts = 0;
  const prober = new Prober({
    port: 8475,
    intervalMs: 100,
    maxProbesPerSecond: 100,
    failures: 3,
    onTransition: () => undefined,
    onError: (err) => errors.push(err),
    onRtt: () => undefined,
    openSocket: () => {
      attempts++;
      throw new TypeError('udpOpen is not a function');
    },
  });
  try {
    prober.setTargets([{ key: '10.9.1.0/24', overlay: parseIp4('10.9.1.0'), publicIp: parseIp4('192.0.2.1') }]);
    prober.setSelf(parseIp4('10.9.0.0'), 1450);
    const deadline = Date.now() + 5000;
    while (attempts < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(attempts >= 2, `retried (attempts ${attempts})`);
    assert.ok(errors.length >= 1 && errors.every((e) => e instanceof TypeError), 'each failure reported to onError');
  } finally {
    prober.stop();
  }
});
