// One twilld per host, enforced before anything is touched: the lock @twilld in the host's
// network namespace (src/netns/abstract-lock.ts).
//
// Why: two daemons on one host fight over the same device, lease and subnet file (seen: 1,249
// VTEP MAC changes and 524 "lease put back" in 4 s, issue 16), and with a different HTTP port
// and state directory nothing stopped the second one. "The host" is the network namespace:
// the kernel state, the underlay IP and the device belong to it (a lab host is one).
import { acquireAbstractLock, LockHeldError, type AbstractLock } from '../netns/abstract-lock';
import { TwillError } from '../base/twill-error';

export const HOST_LOCK_NAME = 'twilld';

export class DaemonRunningError extends TwillError<'ERR_DAEMON_RUNNING'> {
  readonly holderPid: number | undefined;
  constructor(cause: LockHeldError) {
    const who = cause.holderPid !== undefined ? `another twilld (pid ${cause.holderPid})` : `a process whose PID could not be read (ss -xlp | grep @${cause.lockName})`;
    const stop = cause.holderPid !== undefined ? `systemctl stop twilld, or kill ${cause.holderPid}` : 'stop that process';
    super('ERR_DAEMON_RUNNING', `${who} already holds this host's twilld lock @${cause.lockName}: one twilld per host (network namespace); stop it first (${stop})`, { cause });
    this.name = 'DaemonRunningError';
    this.holderPid = cause.holderPid;
  }
}

export async function acquireHostLock(name = HOST_LOCK_NAME): Promise<AbstractLock> {
  try {
    return await acquireAbstractLock(name);
  } catch (err) {
    throw err instanceof LockHeldError ? new DaemonRunningError(err) : err;
  }
}
