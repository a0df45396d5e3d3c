// native/udp_df.c's udpOpen, without root and without sending anything: its argument checks
// (TypeError, code EINVAL, before any socket is made) and a bind failure carrying the errno's
// code, number and the syscall. The DF behaviour on a real path is test/netns/probe.test.ts's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/netns/native';

type Loose = (...args: unknown[]) => number;

test('udpOpen refuses malformed arguments with TypeError EINVAL', () => {
  const open = native().udpOpen as unknown as Loose;
  const bad: unknown[][] = [[], [0x7f000001, 0], ['127.0.0.1', 0, true], [0x7f000001, '0', true], [0x7f000001, 0, 1], [0x7f000001, 65536, true], [0x7f000001, -1, false]];
  for (const args of bad) {
    assert.throws(() => open(...args), (e: unknown) => e instanceof TypeError && (e as { code?: string }).code === 'EINVAL', JSON.stringify(args));
  }
});

test('udpOpen reports a failed bind with the errno code, number and syscall', () => {
  // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails before anything is sent.
  assert.throws(
    () => native().udpOpen(0xc0000201, 0, true),
    (e: unknown) => {
      const err = e as { code?: string; errno?: number; syscall?: string };
      return err.code === 'EADDRNOTAVAIL' && err.errno === 99 && err.syscall === 'bind(udp)';
    },
  );
});
