// Errors of the lab. `code` is stable; the CLI maps it to an exit status and a hint.
import { TwillError } from '../base/twill-error';

export type LabErrorCode =
  | 'ERR_LAB_PREREQ' // the machine lacks something the lab needs (root, etcd, a build)
  | 'ERR_LAB_NAME' // a lab name that cannot name namespaces and interfaces
  | 'ERR_LAB_NOT_FOUND' // no lab state in the given directory
  | 'ERR_LAB_TARGET' // `exec` named no host or pod of the lab
  | 'ERR_LAB_CNI' // the CNI plugin failed or answered something unusable
  | 'ERR_LAB_PROBE' // the connectivity probe could not run at all
  | 'ERR_LAB_TEARDOWN'; // `down` removed what it could; `problems` lists the rest, with commands

export class LabError extends TwillError<LabErrorCode> {
  /** One line per problem, for ERR_LAB_PREREQ and ERR_LAB_TEARDOWN. */
  readonly problems: string[];

  constructor(code: LabErrorCode, message: string, opts: { problems?: string[]; cause?: unknown } = {}) {
    super(code, message, opts);
    this.name = 'LabError';
    this.problems = opts.problems ?? [];
  }
}
