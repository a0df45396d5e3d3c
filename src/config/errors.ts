// Configuration errors. `field` names the flag (without leading dashes) or config key that
// was wrong, so callers and tests can tell which input failed without parsing the message.
import { TwillError } from '../base/twill-error';

export class ConfigError extends TwillError<'ERR_CONFIG'> {
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', message, options);
    this.name = 'ConfigError';
    this.field = field;
  }
}
