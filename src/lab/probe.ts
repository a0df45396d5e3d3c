// The lab's pod×pod connectivity matrix, measured with UDP instead of ping.
//
// Why not `ping`: nothing in src/ runs ping/ip-like tools, and Node has no raw ICMP sockets
// (the raw-socket addon needs a rebuild per Node ABI, CAP_NET_RAW and sees every ICMP packet).
// A UDP echo proves the same path — pod veth, host bridge, route, VXLAN device, underlay, the
// peer's decapsulation and its pod — and measures a round trip.
//
// How a socket ends up in a pod: a socket belongs to the namespace of the thread that created
// it, and node:dgram creates it inside bind(). bind() is synchronous when the address lookup
// is, so each socket gets a lookup that answers at once (addresses here are IP literals) and
// is bound inside inNetns(); it stays in the pod namespace for its whole life. Binding to the
// pod's own address doubles as a check: in any other namespace it fails with EADDRNOTAVAIL.
// Note that 'listening' is emitted synchronously inside bind(): listen before binding.
//
// The responders live in this process, for the duration of one matrix: nothing is left
// running in the pods, so there is nothing to find, stop or leak afterwards.
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { inNetns } from '../netns/netns';

export interface ProbeEndpoint {
  name: string;
  nsPath: string;
  /** The pod's IPv4 address (no prefix length). */
  ip: string;
}

export interface ProbeResult {
  from: string;
  to: string;
  ok: boolean;
  /** Round trip of the first answered attempt. */
  rttMs: number | null;
  /** Why the pair could not be probed (e.g. a socket could not be bound), if so. */
  error?: string;
}

export interface ProbeOptions {
  attempts?: number;
  attemptTimeoutMs?: number;
}

const syncLookup = (host: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void): void => cb(null, host, 4);

/** A UDP socket created and bound inside the namespace at `nsPath`. */
export function bindInNetns(nsPath: string, address: string, port = 0): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', lookup: syncLookup as never });
  const ready = new Promise<dgram.Socket>((resolve, reject) => {
    s.once('listening', () => resolve(s));
    s.once('error', (err) => {
      s.close();
      reject(err);
    });
  });
  try {
    inNetns(nsPath, () => s.bind({ port, address }));
  } catch (err) {
    s.close();
    return Promise.reject(err);
  }
  return ready;
}

async function tryBind(ep: ProbeEndpoint): Promise<dgram.Socket | Error> {
  try {
    return await bindInNetns(ep.nsPath, ep.ip);
  } catch (err) {
    return err as Error;
  }
}

/** Probes every ordered pair (including each pod to itself). Never throws for a failed pair. */
export async function probeMatrix(pods: readonly ProbeEndpoint[], opts: ProbeOptions = {}): Promise<ProbeResult[]> {
  const attempts = opts.attempts ?? 3;
  const timeoutMs = opts.attemptTimeoutMs ?? 700;
  const responders = await Promise.all(pods.map(tryBind));
  const senders = await Promise.all(pods.map(tryBind));
  try {
    for (const r of responders) {
      if (r instanceof Error) continue;
      r.on('message', (msg, rinfo) => r.send(msg, rinfo.port, rinfo.address));
      r.on('error', () => undefined); // a send error only means that probe fails
    }
    const pending = new Map<string, (t: number) => void>();
    for (const s of senders) {
      if (s instanceof Error) continue;
      s.on('message', (msg) => pending.get(msg.toString('utf8'))?.(performance.now()));
      s.on('error', () => undefined);
    }

    const probePair = async (i: number, j: number): Promise<ProbeResult> => {
      const from = pods[i]!;
      const to = pods[j]!;
      const s = senders[i]!;
      const r = responders[j]!;
      if (s instanceof Error) return { from: from.name, to: to.name, ok: false, rttMs: null, error: `cannot bind in ${from.name}: ${s.message}` };
      if (r instanceof Error) return { from: from.name, to: to.name, ok: false, rttMs: null, error: `cannot bind in ${to.name}: ${r.message}` };
      const port = r.address().port;
      for (let a = 0; a < attempts; a++) {
        const token = `twill-probe ${from.name} ${to.name} ${randomBytes(6).toString('hex')}`;
        const sent = performance.now();
        const answered = await new Promise<number | null>((resolve) => {
          const timer = setTimeout(() => {
            pending.delete(token);
            resolve(null);
          }, timeoutMs);
          pending.set(token, (t) => {
            clearTimeout(timer);
            pending.delete(token);
            resolve(t);
          });
          s.send(token, port, to.ip);
        });
        if (answered !== null) return { from: from.name, to: to.name, ok: true, rttMs: answered - sent };
      }
      return { from: from.name, to: to.name, ok: false, rttMs: null };
    };

    const jobs: Array<Promise<ProbeResult>> = [];
    for (let i = 0; i < pods.length; i++) for (let j = 0; j < pods.length; j++) jobs.push(probePair(i, j));
    return await Promise.all(jobs);
  } finally {
    for (const s of [...responders, ...senders]) if (!(s instanceof Error)) s.close();
  }
}
