// Errors of the peer-probing subsystem. `code` is stable; callers branch on it, never on text.

export type ProbeErrorCode = 'ERR_PROBE_CONFIG' | 'ERR_PROBE_SOCKET' | 'ERR_HEALTH_SUMMARY';

export class ProbeError extends Error {
  constructor(
    readonly code: ProbeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ProbeError';
  }
}
