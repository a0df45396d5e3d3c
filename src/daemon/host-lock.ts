// One twilld per host, enforced: the lock is an abstract unix socket "@twilld" bound in the
// host's network namespace, and its holder answers every connection with its PID.
//
// Why: two daemons on one host fight over the same device, lease and subnet file (seen: 1,249
// VTEP MAC changes and 524 "lease put back" in 4 s, issue 16), and with a different HTTP port
// and state directory nothing stopped the second one. "The host" is the network namespace:
// that is what the kernel state, the underlay IP and the device belong to (a lab host is one).
//
// Why an abstract socket and not a PID file: its name belongs to the network namespace (no
// path to agree on, and lab hosts sharing a filesystem do not collide), binding is atomic, the
// kernel releases it when the holder dies however it dies (no stale file to judge), and it
// leaves nothing on disk. The lock is taken before anything else: a daemon that loses touches
// nothing. A process squatting the name makes twilld refuse to start, naming that process.
import * as net from 'node:net';

export const HOST_LOCK_NAME = 'twilld';

export class HostLockedError extends Error {
  readonly code = 'ERR_DAEMON_RUNNING' as const;
  constructor(
    readonly lockName: string,
    /** The holder's PID as it answered; undefined when it did not answer. */
    readonly holderPid: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      holderPid !== undefined
        ? `another twilld (pid ${holderPid}) already runs on this host (network namespace; lock @${lockName}); stop it first (systemctl stop twilld, or kill ${holderPid})`
        : `another process holds the twilld lock @${lockName} on this host (network namespace) and did not say its PID; find it with: ss -xlp | grep @${lockName}`,
      options,
    );
    this.name = 'HostLockedError';
  }
}

export interface HostLock {
  release(): Promise<void>;
}

/** Takes the host lock, or throws HostLockedError naming the holder. */
export async function acquireHostLock(name = HOST_LOCK_NAME): Promise<HostLock> {
  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.end(`${JSON.stringify({ pid: process.pid })}\n`);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: `\0${name}` }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw new HostLockedError(name, await askHolder(name), { cause: err });
  }
  server.on('error', () => undefined);
  server.unref(); // held for the process's life, but never what keeps it alive
  return { release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The holder's PID, from its answer; undefined if it says nothing sensible within a second. */
function askHolder(name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const sock = net.connect({ path: `\0${name}` });
    const done = (pid: number | undefined): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(pid);
    };
    const timer = setTimeout(() => done(undefined), 1000);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (text += d));
    sock.on('error', () => done(undefined));
    sock.on('end', () => {
      try {
        const pid = (JSON.parse(text) as { pid?: unknown }).pid;
        done(typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? pid : undefined);
      } catch {
        done(undefined);
      }
    });
  });
}
