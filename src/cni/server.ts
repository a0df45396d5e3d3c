// `twill serve`: the CNI plugin kept warm. The runtime-facing executable is the native
// front-end (native/cni_front.c); it hands each call here over the abstract unix socket
// "@twill-cni" of its network namespace and relays the answer, so a call costs the plugin's
// work (a few ms) instead of a Node.js start (~40 ms). The answer is exactly what the Node
// plugin would print: both run `run(env, stdin)` from skel.ts. When this server is not there,
// the front-end runs the Node plugin itself, so stopping or restarting it is always safe.
//
// Trust: commands run as root for whoever asks, so only root may ask (SO_PEERCRED). Calls run
// one at a time (they are synchronous, a few ms each), in the order they complete.
// Wire format: see native/cni_front.c.
//
// Paths: the answer must be the one the Node plugin gives in the caller's place, and the caller
// (the runtime, through the front-end) may see another filesystem than this server: systemd's
// PrivateTmp/ProtectHome give twill-cni.service its own mount namespace, and a runtime may run
// in one with a private /run. So each call runs in the caller's filesystem view: the main
// thread enters the front-end's mount namespace and root (native/fs_view.c, by the PID
// SO_PEERCRED gives) for the synchronous call and returns after it. CNI_NETNS, the config's
// subnetFile and dataDir, and everything else the plugin opens (/proc/sys included) resolve
// exactly as they do for the plugin, symlinks such as /var/run -> /run included. All three must
// be absolute (skel.ts, config.ts), so the caller's working directory plays no part. When that
// view cannot be taken (the caller in another PID namespace, or gone) the server declines:
// it closes without an answer and the front-end runs the Node plugin itself.
import * as net from 'node:net';
import * as os from 'node:os';
import { defaultLogFormat, formatRecord, isLogFormat, logRecord, type LogFormat } from '../observe/log-line';
import { native } from '../netns/native';
import { loadCommands, run, type Outcome } from './skel';
import { TwillError } from '../base/twill-error';

export const SOCKET_NAME = 'twill-cni';
const MAX_ENV = 64 * 1024;
const MAX_STDIN = 4 * 1024 * 1024;
const IDLE_MS = 10_000;
const RETRY_LISTEN_MS = 5_000;

export class WireError extends TwillError<'ERR_CNI_WIRE'> {
  constructor(message: string) {
    super('ERR_CNI_WIRE', message);
    this.name = 'WireError';
  }
}

export interface Request {
  env: Record<string, string>;
  stdin: string;
}

/** The whole request, undefined while more bytes are needed; throws on a malformed one. */
export function decodeRequest(buf: Buffer): Request | undefined {
  if (buf.length < 12) return undefined;
  if (buf.toString('latin1', 0, 4) !== 'TWC1') throw new WireError('not a twill CNI request');
  const envLen = buf.readUInt32BE(4);
  const stdinLen = buf.readUInt32BE(8);
  if (envLen > MAX_ENV || stdinLen > MAX_STDIN) throw new WireError(`request too large (env ${envLen}, stdin ${stdinLen} bytes)`);
  if (buf.length < 12 + envLen + stdinLen) return undefined;
  const env: Record<string, string> = {};
  for (const kv of buf.toString('utf8', 12, 12 + envLen).split('\0')) {
    const eq = kv.indexOf('=');
    // The front-end sends only these; anything else is ignored rather than trusted.
    if (eq > 0 && (kv.startsWith('CNI_') || kv.startsWith('TWILL_CNI_DEBUG='))) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { env, stdin: buf.toString('utf8', 12 + envLen, 12 + envLen + stdinLen) };
}

export function encodeAnswer(outcome: Outcome): Buffer {
  const body = Buffer.from(outcome.stdout ? `${outcome.stdout}\n` : '');
  const head = Buffer.alloc(12);
  head.write('TWR1', 0, 'latin1');
  head.writeUInt32BE(outcome.exitCode, 4);
  head.writeUInt32BE(body.length, 8);
  return Buffer.concat([head, body]);
}

export type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

function peerCred(socket: net.Socket): { uid: number; pid: number } | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  try {
    return native().peerCred(fd);
  } catch {
    return undefined;
  }
}

/** `run` in the filesystem view of process `pid`; undefined when that view cannot be taken. */
export function runAs(pid: number, env: Record<string, string>, stdin: string): Outcome | undefined {
  if (pid <= 0) return undefined;
  const entered = native().fsViewEnter(pid);
  if (entered < 0) return undefined;
  try {
    return run(env, stdin);
  } finally {
    if (entered === 1) native().fsViewReturn();
  }
}

function handle(socket: net.Socket, log: Log): void {
  const cred = peerCred(socket);
  if (cred?.uid !== 0) {
    log('warn', 'refused a CNI call from a non-root peer', { uid: cred?.uid ?? null });
    socket.destroy();
    return;
  }
  let buf: Buffer = Buffer.alloc(0);
  let done = false;
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    if (done) return;
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let req: Request | undefined;
    try {
      req = decodeRequest(buf);
    } catch (err) {
      // No answer: the front-end then runs the Node plugin, which copes with anything.
      log('warn', 'dropped a malformed CNI request', { error: (err as Error).message });
      done = true;
      socket.destroy();
      return;
    }
    if (!req) return;
    done = true;
    const t0 = performance.now();
    let outcome: Outcome | undefined;
    try {
      outcome = runAs(cred.pid, req.env, req.stdin);
    } catch (err) {
      log('warn', 'could not take the caller\'s filesystem view', { error: (err as Error).message, code: (err as { code?: string }).code ?? null });
    }
    if (!outcome) {
      // No answer: the front-end runs the Node plugin in the caller's place.
      log('warn', 'declined a CNI call: the caller\'s filesystem view is out of reach', { pid: cred.pid, command: req.env['CNI_COMMAND'] ?? null });
      socket.destroy();
      return;
    }
    socket.end(encodeAnswer(outcome));
    // One line per call, as the reference plugins' runtimes log them; failures carry the answer.
    const fields = { command: req.env['CNI_COMMAND'] ?? null, containerId: req.env['CNI_CONTAINERID'] ?? null, ifname: req.env['CNI_IFNAME'] ?? null, exitCode: outcome.exitCode, ms: Math.round((performance.now() - t0) * 10) / 10 };
    if (outcome.exitCode === 0) log('info', 'CNI call', fields);
    else log('warn', 'CNI call failed', { ...fields, answer: outcome.stdout });
  });
}

export interface CniServer {
  close(): Promise<void>;
}

/** Listens on @<name> in the current network namespace; waits while another server holds it. */
export function startServer(log: Log, name = SOCKET_NAME): CniServer {
  // Loaded now, from this view: a call may run in a caller's view, where our files are not.
  loadCommands();
  const server = net.createServer((s) => handle(s, log));
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  const listen = (): void => {
    server.listen(`\0${name}`);
  };
  server.on('listening', () => log('info', 'serving CNI calls', { socket: `@${name}` }));
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE' && !closed) {
      // Another server of this namespace (an upgrade overlapping the old one): take over when it goes.
      log('warn', `@${name} is held by another process; retrying in ${RETRY_LISTEN_MS / 1000} s`);
      retry = setTimeout(listen, RETRY_LISTEN_MS);
      return;
    }
    log('error', 'CNI server failed', { error: err.message, code: err.code ?? null });
  });
  listen();
  return {
    close: () =>
      new Promise((resolve) => {
        closed = true;
        if (retry) clearTimeout(retry);
        if (!server.listening) return resolve();
        server.close(() => resolve());
      }),
  };
}

/** Log lines in twill's one shape (src/observe/log-line.ts), as JSON or text. */
function lineLog(format: LogFormat): Log {
  const base = { pid: process.pid, hostname: os.hostname() };
  return (level, msg, fields = {}) => void process.stderr.write(formatRecord(logRecord(level, msg, fields, base), format));
}

/** `--log-format text|json`, else TWILL_LOG_FORMAT, else text on a terminal and JSON otherwise. */
function serveLogFormat(argv: readonly string[], env: NodeJS.ProcessEnv): LogFormat | string {
  const i = argv.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='));
  const v = i < 0 ? env['TWILL_LOG_FORMAT'] || undefined : argv[i]!.includes('=') ? argv[i]!.slice('--log-format='.length) : argv[i + 1];
  return v ?? defaultLogFormat(process.stderr.isTTY === true);
}

/** `twill serve`: runs until SIGTERM/SIGINT. */
export function serveMain(argv: readonly string[]): void {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      'Usage: twill serve\n\nKeeps the twill CNI plugin warm for the native front-end (/opt/cni/bin/twill):\n' +
        `listens on the abstract unix socket @${SOCKET_NAME} of this network namespace and answers\n` +
        'CNI calls from root exactly as the plugin would. Logs one line per call on stderr.\n\n' +
        '  --log-format text|json   default: TWILL_LOG_FORMAT, else text on a terminal and json otherwise\n',
    );
    return;
  }
  const format = serveLogFormat(argv, process.env);
  const rest = argv.filter((a, i) => !(a.startsWith('--log-format') || (i > 0 && argv[i - 1] === '--log-format')));
  if (rest.length > 0 || !isLogFormat(format)) {
    const what = rest.length > 0 ? `unexpected argument ${JSON.stringify(rest[0])}` : `--log-format must be text or json, not ${JSON.stringify(format)}`;
    process.stderr.write(`twill serve: ${what} (see --help)\n`);
    process.exitCode = 2;
    return;
  }
  const server = startServer(lineLog(format));
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
