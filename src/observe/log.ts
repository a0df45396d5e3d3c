// Logging setup: one pino root logger per process, a child per component.
//
// JSON lines go to stderr by default so that the CLI tools' stdout (CNI results, twillctl
// output) stays machine-readable; under systemd stderr lands in the journal anyway.
// Writes are synchronous: the daemon logs little, and a crash must not lose the last lines.
import pino from 'pino';
import { ConfigError } from '../config/errors';
import { renderPinoLine, type LogFormat } from './log-line';

export type Logger = pino.Logger;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(level: string): level is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(level);
}

// Defence in depth: nothing should pass secrets to the logger, but if an options object with
// etcd credentials or an HTTP header bag is ever logged whole, these paths are masked.
const REDACT_PATHS = [
  'password',
  'token',
  'authorization',
  'credentials',
  '*.password',
  '*.token',
  '*.authorization',
  '*.credentials',
  '*.auth',
  '*.headers.authorization',
];

/**
 * The root logger. Lines have the shape of src/observe/log-line.ts: JSON with the level's name,
 * or text (`format`). Without `dest`, stderr, written synchronously.
 */
export function createLogger(level: string, dest?: NodeJS.WritableStream, format: LogFormat = 'json'): Logger {
  if (!isLogLevel(level)) {
    throw new ConfigError('log-level', `unknown log level "${level}" (expected one of ${LOG_LEVELS.join(', ')})`);
  }
  const options: pino.LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const stream: pino.DestinationStream = dest ?? pino.destination({ dest: 2, sync: true });
  if (format === 'json') return pino(options, stream);
  return pino(options, { write: (line: string) => void stream.write(renderPinoLine(line, format)) });
}

/** A child logger tagged with the component name (e.g. "registry", "dataplane.routes"). */
export function child(log: Logger, component: string): Logger {
  return log.child({ component });
}
