// Errors of `twillctl install`. `code` is stable; callers branch on it, never on the message.
import { TwillError } from '../base/twill-error';

export type InstallErrorCode =
  | 'ERR_INSTALL_SOURCE' // the package to install from is incomplete (not built, deps missing)
  | 'ERR_INSTALL_TARGET' // something in the target root is in the way
  | 'ERR_INSTALL_SETTING'; // an --etcd-endpoints/--iface/--node value is unusable

export class InstallError extends TwillError<InstallErrorCode> {
  readonly path: string | undefined;

  constructor(code: InstallErrorCode, message: string, opts: { path?: string; cause?: unknown } = {}) {
    super(code, message, opts);
    this.name = 'InstallError';
    this.path = opts.path;
  }
}
