// Configuration twilld can judge at start-up, judged before anything is retried: an interface
// that does not exist (--iface), TLS files it cannot read (--etcd-cafile/-certfile/-keyfile).
// These used to be logged once and retried silently forever (issue 16); a typo does not fix
// itself, so twilld exits 2 naming what exists instead. Later (an interface that disappears
// while running) is a different story: the daemon keeps converging then.
// The judgement is pure (`startupProblems`); gathering the facts is `gatherStartupFacts`.
import * as fs from 'node:fs';
import type { DaemonConfig } from '../config/daemon';
import type { NetlinkHandle } from '../netlink/handle';
import { TwillError } from '../base/twill-error';

export interface StartupFacts {
  /** Interfaces of this host (network namespace) with their IPv4 addresses. */
  links: Array<{ name: string; addrs: string[] }>;
  /** Why a file cannot be read, by path; absent when it can. */
  unreadable: Map<string, string>;
}

export class StartupConfigError extends TwillError<'ERR_STARTUP_CONFIG'> {
  constructor(readonly problems: string[]) {
    super('ERR_STARTUP_CONFIG', `configuration error: ${problems.join('; ')}`);
    this.name = 'StartupConfigError';
  }
}

const TLS_FLAGS = [
  ['etcd-cafile', 'etcdCafile'],
  ['etcd-certfile', 'etcdCertfile'],
  ['etcd-keyfile', 'etcdKeyfile'],
] as const;

export function startupProblems(cfg: DaemonConfig, facts: StartupFacts): string[] {
  const problems: string[] = [];
  // --iface is repeatable (a name, or an address an interface holds; the first that exists
  // wins): a configuration error only when none of them exists and nothing else may choose.
  const exists = (want: string): boolean => facts.links.some((l) => l.name === want || l.addrs.includes(want));
  if (cfg.iface.length > 0 && cfg.ifaceRegex.length === 0 && cfg.ifaceCanReach === undefined && !cfg.iface.some(exists)) {
    const list = facts.links.map((l) => (l.addrs.length ? `${l.name} (${l.addrs.join(', ')})` : l.name)).join(', ');
    const given = cfg.iface.map((i) => `--iface ${i}`).join(', ');
    problems.push(`${given}: no such interface${cfg.iface.length > 1 ? 's' : ''} on this host; interfaces here: ${list || 'none'}`);
  }
  for (const [flag, key] of TLS_FLAGS) {
    const file = cfg[key];
    if (file === undefined) continue;
    const why = facts.unreadable.get(file);
    if (why !== undefined) problems.push(`--${flag} ${file}: cannot read it (${why})`);
  }
  return problems;
}

export function gatherStartupFacts(cfg: DaemonConfig, h: NetlinkHandle): StartupFacts {
  const addrs = h.listAddrs();
  const links = h.listLinks().map((l) => ({ name: l.name, addrs: addrs.filter((a) => a.index === l.index).map((a) => a.ip) }));
  const unreadable = new Map<string, string>();
  for (const [, key] of TLS_FLAGS) {
    const file = cfg[key];
    if (file === undefined) continue;
    try {
      fs.closeSync(fs.openSync(file, 'r'));
    } catch (err) {
      unreadable.set(file, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
  }
  return { links, unreadable };
}

/** Throws StartupConfigError listing every problem at once. */
export function checkStartup(cfg: DaemonConfig, h: NetlinkHandle): void {
  const problems = startupProblems(cfg, gatherStartupFacts(cfg, h));
  if (problems.length > 0) throw new StartupConfigError(problems);
}
