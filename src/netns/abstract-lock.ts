// A lock that is an abstract unix socket bound in the current network namespace; its holder
// answers every connection with its PID, so whoever is refused can name the holder.
//
// Why an abstract socket and not a PID file: binding is atomic, the kernel releases it when the
// holder dies however it dies (no stale file to judge, no takeover race), and it leaves nothing
// on disk. Its name belongs to the network namespace: that is the point for twilld (one per
// host, and a lab host is a namespace) and harmless for installs (run from the host's own).
// A process squatting a name can only refuse service, and is then named (or said to be silent).
import * as net from 'node:net';

export class LockHeldError extends Error {
  readonly code = 'ERR_LOCK_HELD' as const;
  constructor(
    readonly lockName: string,
    /** The holder's PID as it answered; undefined when it did not answer. */
    readonly holderPid: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      holderPid !== undefined
        ? `lock @${lockName} is held by pid ${holderPid}`
        : `lock @${lockName} is held by a process that did not say its PID (find it with: ss -xlp | grep @${lockName})`,
      options,
    );
    this.name = 'LockHeldError';
  }
}

export interface AbstractLock {
  release(): Promise<void>;
}

/** Takes the lock, or throws LockHeldError naming the holder. */
export async function acquireAbstractLock(name: string): Promise<AbstractLock> {
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
    throw new LockHeldError(name, await askHolder(name), { cause: err });
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
