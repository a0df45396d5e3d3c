// The one shape of twill's log lines, for every program: twilld (through pino) and
// `twill-cni serve` (which keeps pino out of the CNI plugin's bundle for start-up time) write
// the same records, as JSON or as text.
//   json: {"level":"info","time":"2026-12-06T01:13:39.814Z","pid":9914,"hostname":"vm","component":"registry",…,"msg":"…"}
//   text: 2026-12-06T01:13:39.814Z INFO  [registry] etcd registry created endpoints=["http://…"] tls=false
// `--log-format text|json`; without it, text when stderr is a terminal, JSON otherwise (under
// systemd the journal keeps JSON lines whole). Pure and dependency-free.

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function isLogFormat(s: string): s is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(s);
}

export function defaultLogFormat(stderrIsTTY: boolean): LogFormat {
  return stderrIsTTY ? 'text' : 'json';
}

/** pino's numeric levels, for records written by pino. */
const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export function levelName(level: unknown): string {
  return typeof level === 'number' ? (LEVEL_NAMES[level] ?? String(level)) : String(level);
}

const NOT_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'component', 'msg']);

/** One record as a text line (with the newline). */
export function textLine(rec: Record<string, unknown>): string {
  const time = typeof rec['time'] === 'number' ? new Date(rec['time']).toISOString() : String(rec['time'] ?? new Date().toISOString());
  const component = rec['component'] !== undefined ? `[${String(rec['component'])}] ` : '';
  const fields = Object.entries(rec)
    .filter(([k, v]) => !NOT_FIELDS.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${fieldText(v)}`);
  return `${time} ${levelName(rec['level']).toUpperCase().padEnd(5)} ${component}${String(rec['msg'] ?? '')}${fields.length ? '  ' + fields.join(' ') : ''}\n`;
}

function fieldText(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'object' && v !== null && 'message' in v && 'stack' in v) return JSON.stringify((v as { message: unknown }).message);
  return JSON.stringify(v);
}

/** A record in the shape pino writes for twilld: level, time, pid, hostname, fields, msg. */
export function logRecord(level: string, msg: string, fields: Record<string, unknown>, base: { pid: number; hostname: string }, now = new Date()): Record<string, unknown> {
  return { level, time: now.toISOString(), pid: base.pid, hostname: base.hostname, ...fields, msg };
}

export function formatRecord(rec: Record<string, unknown>, format: LogFormat): string {
  return format === 'json' ? `${JSON.stringify(rec)}\n` : textLine(rec);
}

/** Re-renders one line pino wrote (JSON) in `format`. */
export function renderPinoLine(line: string, format: LogFormat): string {
  if (format === 'json') return line;
  try {
    return textLine(JSON.parse(line) as Record<string, unknown>);
  } catch {
    return line;
  }
}
