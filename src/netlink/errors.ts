// Netlink failures carry the kernel's errno, the operation and its target, so callers can
// branch on `errno`/`errnoName` (never on message text) and logs say what failed where.
import * as os from 'node:os';
import { TwillError } from '../base/twill-error';

const errnoNames = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, num]) => [num as number, name]),
);

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

export class NetlinkError extends TwillError<'ERR_NETLINK'> {
  readonly errno: number;
  readonly errnoName: string;
  readonly op: string;
  readonly target: string;
  /** The kernel's extended-ack text, when it sent one. */
  readonly kernelMessage: string | undefined;

  constructor(errno: number, op: string, target: string, kernelMessage?: string, cause?: unknown) {
    const name = errnoName(errno);
    // errno 0: the failure came from below the kernel (e.g. the addon did not load): say what.
    const detail = kernelMessage ?? (errno === 0 && cause instanceof Error ? cause.message : undefined);
    super('ERR_NETLINK', `${op} ${target}: ${name}${detail ? ` (${detail})` : ''}`, { cause });
    this.name = 'NetlinkError';
    this.errno = errno;
    this.errnoName = name;
    this.op = op;
    this.target = target;
    this.kernelMessage = kernelMessage;
  }
}

export const ENOENT = os.constants.errno.ENOENT;
export const EEXIST = os.constants.errno.EEXIST;
export const ENODEV = os.constants.errno.ENODEV;
export const ESRCH = os.constants.errno.ESRCH;
export const EADDRNOTAVAIL = os.constants.errno.EADDRNOTAVAIL;
export const ENOBUFS = os.constants.errno.ENOBUFS;
export const ETIMEDOUT = os.constants.errno.ETIMEDOUT;
export const EINVAL = os.constants.errno.EINVAL;

/** "Already gone" answers to a delete: the kernel's choice of errno varies by object type. */
export function isGone(err: unknown): boolean {
  return err instanceof NetlinkError && (err.errno === ENOENT || err.errno === ENODEV || err.errno === ESRCH || err.errno === EADDRNOTAVAIL);
}
