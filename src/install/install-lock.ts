// Installs into one root are serialised: two `twillctl install` at once (two `twill-lab up`, a
// provisioning run racing an operator) once pruned the release that `current` had just been
// switched to, and every program of the host died with "Cannot find module" (issue 16).
//
// The lock is an abstract socket named after the root's real path (src/netns/abstract-lock.ts):
// released by the kernel whatever happens to the installer. A second install waits for the
// first (saying so once), then runs. Pruning is independently safe (install.ts keeps whatever
// `current` points to at prune time), so installs from different network namespaces, which
// this lock cannot see, still never break `current`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { acquireAbstractLock, LockHeldError, type AbstractLock } from '../netns/abstract-lock';
import { InstallError } from './errors';

export function installLockName(root: string): string {
  let real = path.resolve(root);
  try {
    real = fs.realpathSync(real);
  } catch {
    // not there yet: the resolved path names it
  }
  return `twill-install-${createHash('sha256').update(real).digest('hex').slice(0, 16)}`;
}

export async function lockInstallRoot(
  root: string,
  opts: { timeoutMs?: number; pollMs?: number; onWait?: (holderPid: number | undefined) => void } = {},
): Promise<AbstractLock> {
  const name = installLockName(root);
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
  let told = false;
  for (;;) {
    try {
      return await acquireAbstractLock(name);
    } catch (err) {
      if (!(err instanceof LockHeldError)) throw err;
      if (!told) opts.onWait?.(err.holderPid);
      told = true;
      if (Date.now() > deadline) {
        throw new InstallError('ERR_INSTALL_TARGET', `another install into ${root} (pid ${err.holderPid ?? '?'}) still runs; giving up waiting`, { path: root, cause: err });
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
    }
  }
}
