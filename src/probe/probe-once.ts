// One-off probes for `twillctl trace`: a few tries of one probe from a DF socket to a peer's
// responder, the round trip of the first answer or null. Same wire format and socket as the
// daemon's prober; the token is fresh per call, so the daemon's own replies never match.
import { randomInt } from 'node:crypto';
import { formatIp4 } from '../ip/ipv4';
import { openDfSocket } from './socket';
import { decodeProbe, encodeRequest, KIND_REPLY } from './wire';

export interface OnceOptions {
  from: number;
  to: number;
  port: number;
  size: number;
  full: boolean;
  tries?: number;
  timeoutMs?: number;
}

export async function probeOnce(o: OnceOptions): Promise<number | null> {
  const sock = await openDfSocket(o.from, 0);
  const token = randomInt(2 ** 32 - 1) >>> 0;
  try {
    for (let i = 0; i < (o.tries ?? 3); i++) {
      const seq = randomInt(2 ** 31);
      const sent = performance.now();
      const answer = new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => done(null), o.timeoutMs ?? 500);
        // Matched by a fresh random seq and token (63 bits): the source address is not checked,
        // since a peer may answer from its overlay address or its PublicIP depending on its backend.
        const onMsg = (msg: Buffer): void => {
          const d = decodeProbe(msg);
          if (d.ok && d.probe.kind === KIND_REPLY && d.probe.seq === seq && d.probe.token === token && d.probe.size === o.size) done(performance.now() - sent);
        };
        const done = (v: number | null): void => {
          clearTimeout(timer);
          sock.off('message', onMsg);
          resolve(v);
        };
        sock.on('message', onMsg);
      });
      sock.send(encodeRequest({ full: o.full, seq, sender: o.from, token, size: o.size }), o.port, formatIp4(o.to), () => undefined);
      const rtt = await answer;
      if (rtt !== null) return rtt;
    }
    return null;
  } finally {
    sock.close();
  }
}
