// twillctl's errors that are not the daemon's or the installer's. `code` is stable.
import { TwillError } from '../base/twill-error';

export class EtcdUnreachableError extends TwillError<'ERR_ETCD_UNREACHABLE'> {
  constructor(
    readonly endpoints: string[],
    cause: unknown,
  ) {
    super('ERR_ETCD_UNREACHABLE', `cannot read leases from etcd at ${endpoints.join(',')} (set --etcd-endpoints or TWILLD_ETCD_ENDPOINTS in /etc/twill/twilld.env)`, { cause });
    this.name = 'EtcdUnreachableError';
  }
}
