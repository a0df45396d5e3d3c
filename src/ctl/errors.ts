// twillctl's errors that are not the daemon's or the installer's. `code` is stable.
import { TwillError } from '../base/twill-error';
import { etcdCauseOf } from '../subnet/etcd-cause';

export class EtcdUnreachableError extends TwillError<'ERR_ETCD_UNREACHABLE'> {
  constructor(
    readonly endpoints: string[],
    cause: unknown,
  ) {
    super('ERR_ETCD_UNREACHABLE', `cannot read leases from etcd at ${endpoints.join(',')}: ${etcdCauseOf(cause).text} (set --etcd-endpoints, or TWILLD_ETCD_ENDPOINTS in the settings file)`, { cause });
    this.name = 'EtcdUnreachableError';
  }
}
