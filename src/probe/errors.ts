// Errors of the peer-probing subsystem. `code` is stable; callers branch on it, never on text.

import { TwillError } from '../base/twill-error';

export type ProbeErrorCode = 'ERR_PROBE_CONFIG' | 'ERR_PROBE_SOCKET' | 'ERR_HEALTH_SUMMARY';

export class ProbeError extends TwillError<ProbeErrorCode> {
  constructor(code: ProbeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProbeError';
  }
}
