// The CNI execution protocol: environment variables, config on stdin, result or error JSON on
// stdout, exit status. `run` is the whole protocol as a function of (env, stdin), so unit tests
// drive it without processes; `main` binds it to the real process.
//
// Start-up cost is most of a CNI call's latency (a runtime starts the plugin once per pod and
// operation), so command modules are loaded lazily: VERSION/STATUS never load netlink, and no
// command loads pino, node:crypto or the `netlink` package.
//
// Order of checks follows libcni's skel: CNI_COMMAND, then stdin, then the other variables,
// then the config, so the error a runtime sees names the first thing that is wrong. Every
// failure becomes spec error JSON; nothing escapes as a stack trace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CNI_NAME, decodeJson, ifnameProblem, parseConfig, type PluginConfig } from './config';
import { COMMANDS, type CmdArgs, type Command } from './cmd-args';
import { CniError, errorJson, toCniError } from './errors';
import { compareVersions, isSemver, LATEST_VERSION, SUPPORTED_VERSIONS } from './versions';
import type { CniResult } from './result';

export interface Outcome {
  stdout: string;
  exitCode: number;
}

type Env = Readonly<Record<string, string | undefined>>;

function envError(name: string, why: string): CniError {
  return new CniError('ERR_CNI_INVALID_ENV', `${name} ${why}`, name);
}

export function parseCommand(env: Env): Command {
  const cmd = env['CNI_COMMAND'];
  if (!cmd) throw envError('CNI_COMMAND', 'is not set');
  if (!(COMMANDS as readonly string[]).includes(cmd)) throw envError('CNI_COMMAND', `must be one of ${COMMANDS.join(', ')}, got ${JSON.stringify(cmd)}`);
  return cmd as Command;
}

/** The per-attachment variables, validated as the spec says for `command`. */
export function parseEnv(env: Env, command: Command): CmdArgs {
  const attachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const containerId = env['CNI_CONTAINERID'] ?? '';
  const ifname = env['CNI_IFNAME'] ?? '';
  const netns = env['CNI_NETNS'] || undefined;
  if (attachment) {
    if (!containerId) throw envError('CNI_CONTAINERID', 'is not set');
    if (!CNI_NAME.test(containerId)) throw envError('CNI_CONTAINERID', `may hold only letters, digits, "_", "." and "-" and must start with a letter or digit, got ${JSON.stringify(containerId)}`);
    const bad = ifnameProblem(ifname);
    if (bad) throw envError('CNI_IFNAME', `${bad}: ${JSON.stringify(ifname)}`);
  }
  if ((command === 'ADD' || command === 'CHECK') && !netns) throw envError('CNI_NETNS', 'is not set');
  if (netns !== undefined && (!path.isAbsolute(netns) || netns.includes('\0'))) throw envError('CNI_NETNS', `must be an absolute path, got ${JSON.stringify(netns)}`);
  return { command, containerId, netns, ifname, args: env['CNI_ARGS'] ?? '', path: env['CNI_PATH'] ?? '' };
}

function versionOutcome(stdin: string): Outcome {
  let requested: unknown;
  try {
    requested = stdin.trim() ? (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion : undefined;
  } catch {
    requested = undefined; // VERSION answers whatever stdin holds
  }
  const cniVersion = isSemver(requested) ? requested : LATEST_VERSION;
  return { stdout: JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS }), exitCode: 0 };
}

function requireVersion(conf: PluginConfig, command: Command, min: string): void {
  if (compareVersions(conf.cniVersion, min) < 0) {
    throw new CniError('ERR_CNI_INCOMPATIBLE_VERSION', `config version ${conf.cniVersion} does not allow ${command}`, `${command} needs cniVersion ${min} or later`);
  }
}

/** Loads every command module now (the server does, before any call; the plugin never needs to). */
export function loadCommands(): void {
  require('./add');
  require('./result');
  require('./del');
  require('./check');
  require('./status');
  require('./gc');
}

function dispatch(args: CmdArgs, conf: PluginConfig): string {
  switch (args.command) {
    case 'ADD': {
      const { cmdAdd } = require('./add') as typeof import('./add');
      const { formatResult } = require('./result') as typeof import('./result');
      const result: CniResult = cmdAdd(args, conf);
      return JSON.stringify(formatResult(result, conf.cniVersion));
    }
    case 'DEL':
      (require('./del') as typeof import('./del')).cmdDel(args, conf);
      return '';
    case 'CHECK':
      requireVersion(conf, 'CHECK', '0.4.0');
      (require('./check') as typeof import('./check')).cmdCheck(args, conf);
      return '';
    case 'STATUS':
      requireVersion(conf, 'STATUS', '1.1.0');
      (require('./status') as typeof import('./status')).cmdStatus(conf);
      return '';
    case 'GC':
      requireVersion(conf, 'GC', '1.1.0');
      (require('./gc') as typeof import('./gc')).cmdGc(conf);
      return '';
    default:
      throw envError('CNI_COMMAND', `${args.command} is not handled here`);
  }
}

/** The protocol, minus the process: never throws. */
export function run(env: Env, stdin: string): Outcome {
  let version = LATEST_VERSION;
  try {
    const command = parseCommand(env);
    if (command === 'VERSION') return versionOutcome(stdin);
    const raw = decodeJson(stdin);
    if (isSemver(raw['cniVersion'])) version = raw['cniVersion'];
    const args = parseEnv(env, command);
    const conf = parseConfig(raw); // cniVersion first (error 1), then the fields (error 7)
    return { stdout: dispatch(args, conf), exitCode: 0 };
  } catch (err) {
    const e = toCniError(err);
    if (env['TWILL_CNI_DEBUG']) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    return { stdout: JSON.stringify(errorJson(e, version)), exitCode: 1 };
  }
}

const EAGAIN_SLEEP = new Int32Array(new SharedArrayBuffer(4));

/** All of stdin. Copes with a non-blocking fd 0 (EAGAIN) and with no stdin at all. */
export function readStdin(fd = 0): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EAGAIN') {
        Atomics.wait(EAGAIN_SLEEP, 0, 0, 2);
        continue;
      }
      if (code === 'EOF' || code === 'EBADF') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function writeAll(fd: number, text: string): void {
  const b = Buffer.from(text);
  let off = 0;
  while (off < b.length) {
    try {
      off += fs.writeSync(fd, b, off);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') throw err;
      Atomics.wait(EAGAIN_SLEEP, 0, 0, 2);
    }
  }
}

/**
 * What the plugin says when run by hand without CNI_COMMAND, as the reference plugins do (on
 * stderr, exit 0): what it is, the protocol versions, and how it is meant to be run.
 */
export function aboutText(version: string): string {
  return (
    `CNI twill plugin v${version}\n` +
    `CNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n` +
    'A container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, STATUS, GC, VERSION) and one plugin\n' +
    'object of /etc/cni/net.d/10-twill.conflist on stdin. By hand: CNI_COMMAND=VERSION twill </dev/null\n'
  );
}

/** The package's version; read at run time (this file and the bundle are both 3 levels deep). */
function ownVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

export function main(): void {
  if (!process.env['CNI_COMMAND']) {
    process.stderr.write(aboutText(ownVersion()));
    process.exitCode = 0;
    return;
  }
  let outcome: Outcome;
  try {
    outcome = run(process.env, readStdin());
  } catch (err) {
    const e = new CniError('ERR_CNI_IO', 'cannot read the network configuration from stdin', (err as Error).message);
    outcome = { stdout: JSON.stringify(errorJson(e, LATEST_VERSION)), exitCode: 1 };
  }
  try {
    if (outcome.stdout) writeAll(1, `${outcome.stdout}\n`);
  } catch {
    // stdout closed by the caller: the exit status still tells.
  }
  process.exitCode = outcome.exitCode;
}
