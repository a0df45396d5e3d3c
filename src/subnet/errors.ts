// Errors from leasing a subnet. Callers branch on `code`:
// - ERR_OUT_OF_SUBNETS: every subnet in SubnetMin..SubnetMax is held; retrying will not help
//   until a host goes away (or the network config grows).
// - ERR_LEASE_CONFLICT: other hosts kept winning the race for the subnets we picked; retry.
// - ERR_ETCD: etcd was unreachable or refused the request; `cause` holds the client's error.
// - ERR_ETCD3_PATCH: the installed etcd3 is not the one twill's patches fit (etcd3-patches.ts).
import { TwillError } from '../base/twill-error';
import { CauseMemory } from './etcd-cause';

export type SubnetErrorCode = 'ERR_OUT_OF_SUBNETS' | 'ERR_LEASE_CONFLICT' | 'ERR_ETCD' | 'ERR_ETCD3_PATCH';

export class SubnetError extends TwillError<SubnetErrorCode> {
  constructor(code: SubnetErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SubnetError';
  }
}

// One per process: a daemon has one etcd client (twillctl too).
const causes = new CauseMemory();

/**
 * Wraps anything thrown by the etcd client, keeping SubnetErrors as they are. The message names
 * the cause (with the endpoint), never only "the circuit breaker is open" (etcd-cause.ts).
 */
export function etcdError(op: string, err: unknown): SubnetError {
  if (err instanceof SubnetError) return err;
  return new SubnetError('ERR_ETCD', `etcd ${op} failed: ${causes.describe(err)}`, { cause: err });
}
