// The lab's "outside" column: each pod sends a UDP datagram to an echo in the outside
// namespace, which answers with the source address it saw. With --ip-masq that is the pod's
// host underlay address (masqueraded); a pod address would mean no NAT happened — and the
// answer could not even come back, since the outside has no route to any pod.
// Sockets are made as in probe.ts (bound inside the namespace, living in this process for
// the duration of one probe), so nothing is left running anywhere.
import { randomBytes } from 'node:crypto';
import type * as dgram from 'node:dgram';
import { bindInNetns, type ProbeEndpoint } from './probe';

export interface OutsideResult {
  from: string;
  ok: boolean;
  /** The source address the outside saw (with masquerade: the pod's host underlay IP). */
  seenSource: string | null;
  rttMs: number | null;
  error?: string;
}

export interface OutsideEndpoint {
  nsPath: string;
  ip: string;
}

/** Reply format: "<token> <source address seen>". */
export function echoReply(msg: Buffer, source: string): string {
  return `${msg.toString('utf8')} ${source}`;
}

/** Binds the echo in the outside namespace: every datagram is answered with its source. */
export async function startOutsideEcho(outside: OutsideEndpoint, port = 0): Promise<dgram.Socket> {
  const s = await bindInNetns(outside.nsPath, outside.ip, port);
  s.on('message', (msg, rinfo) => s.send(echoReply(msg, rinfo.address), rinfo.port, rinfo.address));
  s.on('error', () => undefined);
  return s;
}

export async function probeOutside(pods: readonly ProbeEndpoint[], outside: OutsideEndpoint, opts: { attempts?: number; attemptTimeoutMs?: number } = {}): Promise<OutsideResult[]> {
  const attempts = opts.attempts ?? 3;
  const timeoutMs = opts.attemptTimeoutMs ?? 700;
  let echo: dgram.Socket;
  try {
    echo = await startOutsideEcho(outside);
  } catch (err) {
    return pods.map((p) => ({ from: p.name, ok: false, seenSource: null, rttMs: null, error: `cannot bind the outside echo: ${(err as Error).message}` }));
  }
  const port = echo.address().port;
  try {
    return await Promise.all(pods.map((p) => probeOne(p, outside.ip, port, attempts, timeoutMs)));
  } finally {
    echo.close();
  }
}

async function probeOne(pod: ProbeEndpoint, ip: string, port: number, attempts: number, timeoutMs: number): Promise<OutsideResult> {
  let s: dgram.Socket;
  try {
    s = await bindInNetns(pod.nsPath, pod.ip);
  } catch (err) {
    return { from: pod.name, ok: false, seenSource: null, rttMs: null, error: `cannot bind in ${pod.name}: ${(err as Error).message}` };
  }
  s.on('error', () => undefined);
  try {
    for (let a = 0; a < attempts; a++) {
      const token = `twill-outside ${pod.name} ${randomBytes(6).toString('hex')}`;
      const sent = performance.now();
      const seen = await new Promise<string | null>((resolve) => {
        const timer = setTimeout(() => {
          s.off('message', onMessage);
          resolve(null);
        }, timeoutMs);
        const onMessage = (msg: Buffer): void => {
          const text = msg.toString('utf8');
          if (!text.startsWith(`${token} `)) return;
          clearTimeout(timer);
          s.off('message', onMessage);
          resolve(text.slice(token.length + 1));
        };
        s.on('message', onMessage);
        s.send(token, port, ip);
      });
      if (seen !== null) return { from: pod.name, ok: true, seenSource: seen, rttMs: performance.now() - sent };
    }
    return { from: pod.name, ok: false, seenSource: null, rttMs: null };
  } finally {
    s.close();
  }
}
