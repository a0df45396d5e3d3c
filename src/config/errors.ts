// Configuration errors. `field` names the flag (without leading dashes) or config key that
// was wrong, so callers and tests can tell which input failed without parsing the message.

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG' as const;
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
    this.field = field;
  }
}
