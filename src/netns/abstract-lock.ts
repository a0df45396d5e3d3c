// A lock that is an abstract unix socket bound in the current network namespace. Whoever is
// refused connects and asks the kernel who listens (SO_PEERCRED): the holder is named even while
// it is too busy to answer (an install copying a release blocks its event loop for seconds), and
// a squatter cannot pass itself off as someone else.
//
// Why an abstract socket and not a PID file: binding is atomic, the kernel releases it when the
// holder dies however it dies (no stale file to judge, no takeover race), and it leaves nothing
// on disk. Its name belongs to the network namespace: that is the point for twilld (one per
// host, and a lab host is a namespace) and harmless for installs (run from the host's own).
// A process squatting a name can only refuse service, and is then named (or said to be silent).
import * as net from 'node:net';
import { native } from './native';
import { TwillError } from '../base/twill-error';

export class LockHeldError extends TwillError<'ERR_LOCK_HELD'> {
  constructor(
    readonly lockName: string,
    /** The holder's PID as the kernel says; undefined if it could not be asked. */
    readonly holderPid: number | undefined,
    options?: { cause?: unknown },
  ) {
    super('ERR_LOCK_HELD', 
      holderPid !== undefined
        ? `lock @${lockName} is held by pid ${holderPid}`
        : `lock @${lockName} is held by a process whose PID could not be read (find it with: ss -xlp | grep @${lockName})`,
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
  const server = net.createServer((sock) => sock.destroy());
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
    throw new LockHeldError(name, await holderPid(name), { cause: err });
  }
  server.on('error', () => undefined);
  server.unref(); // held for the process's life, but never what keeps it alive
  return { release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The listener's PID, from the kernel; undefined if it cannot be connected to within a second. */
function holderPid(name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ path: `\0${name}` });
    const done = (pid: number | undefined): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(pid);
    };
    const timer = setTimeout(() => done(undefined), 1000);
    sock.on('error', () => done(undefined));
    sock.on('connect', () => {
      const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
      try {
        done(typeof fd === 'number' && fd >= 0 ? native().peerCred(fd).pid || undefined : undefined);
      } catch {
        done(undefined);
      }
    });
  });
}
