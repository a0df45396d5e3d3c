#!/usr/bin/env node
// twilld entry point: flags → daemon. Wiring only.
import { parseDaemonArgs } from '../config/daemon';
import { Daemon, DaemonStopping } from '../daemon/daemon';
import { acquireHostLock, DaemonRunningError } from '../daemon/host-lock';
import { StartupConfigError } from '../daemon/preflight';
import { createLogger } from '../observe/log';
import { defaultLogFormat } from '../observe/log-line';

const VERSION = require('../../../package.json').version as string;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseDaemonArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`twilld: ${(err as Error).message}\nRun 'twilld --help' for the flags.\n`);
    return 2;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`twilld ${VERSION}\n`);
    return 0;
  }
  const cfg = parsed.config;
  const log = createLogger(cfg.logLevel, undefined, cfg.logFormat ?? defaultLogFormat(process.stderr.isTTY === true));
  // One daemon per host, before anything is touched (src/daemon/host-lock.ts).
  try {
    await acquireHostLock();
  } catch (err) {
    if (!(err instanceof DaemonRunningError)) throw err;
    log.fatal({ err: err.message, holderPid: err.holderPid, code: err.code }, 'another twilld runs on this host; exiting without touching anything');
    return 1;
  }
  const daemon = new Daemon(cfg, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping; kernel state and the subnet lease stay in place');
    daemon.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (continuing)'));
  log.info({ version: VERSION, config: { ...cfg } }, 'twilld starting');
  try {
    await daemon.start();
  } catch (err) {
    if (err instanceof DaemonStopping) return 0;
    if (err instanceof StartupConfigError) {
      log.fatal({ problems: err.problems, code: err.code }, 'configuration error; not starting (fix the flags or /etc/twill/twilld.env)');
      return 2;
    }
    log.fatal({ err }, 'twilld failed to start');
    return 1;
  }
  return -1; // keep running
}

main().then((code) => {
  if (code >= 0) process.exit(code);
});
