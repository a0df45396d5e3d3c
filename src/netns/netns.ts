// Named network namespaces (/run/netns/<name>, the layout `ip netns` uses, so operators can
// inspect them with `ip -n <name>`), and running synchronous work inside one.
//
// twill, iproute2, runtimes and CNI tooling share /run/netns, so twill does there what
// iproute2 does (native/netns_files.c has the details): before creating a file it makes
// /run/netns a shared mount point (bind-mounting it on itself when it is not one yet), and it
// deletes by unmounting, then unlinking. Without that, a foreign `ip netns add` shadows twill's
// namespaces and they can no longer be deleted (EBUSY); one shadowed by an older twill is
// still removed (netnsDelete), or reported with the command that removes it by hand.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from './native';

export const NETNS_DIR = '/run/netns';

export function netnsPath(name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || name === '.' || name === '..') throw new TypeError(`invalid namespace name: ${name}`);
  return path.join(NETNS_DIR, name);
}

export function netnsExists(name: string): boolean {
  return fs.existsSync(netnsPath(name));
}

/** Creates /run/netns/<name>; an existing one is reused. */
export function createNetns(name: string): string {
  const p = netnsPath(name);
  fs.mkdirSync(NETNS_DIR, { recursive: true });
  native().netnsDirShared(NETNS_DIR);
  try {
    fs.closeSync(fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o444));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return p;
    throw err;
  }
  try {
    native().netnsCreate(p);
  } catch (err) {
    fs.rmSync(p, { force: true });
    throw err;
  }
  return p;
}

/** Removes /run/netns/<name>; false when there was none. Throws (with `code`) when it cannot. */
export function deleteNetns(name: string): boolean {
  return native().netnsDelete(netnsPath(name));
}

/**
 * The command that removes a namespace file by hand when deleteNetns could not: in a private
 * copy of the mount namespace, peel off whatever covers the file, then unlink it there (the
 * kernel then detaches its mounts everywhere).
 */
export function netnsRemoveCommand(name: string): string {
  const p = netnsPath(name);
  return `unshare --mount --propagation private sh -c 'until rm -f ${p}; do umount -l ${p} || umount -l ${NETNS_DIR} || exit 1; done'`;
}

/**
 * Runs `fn` with the calling thread inside the namespace at `nsPath`. `fn` must be synchronous:
 * sockets it opens and processes it spawns stay in that namespace; nothing after it does.
 */
export function inNetns<T>(nsPath: string, fn: () => T): T {
  const orig = native().netnsEnter(nsPath);
  try {
    return fn();
  } finally {
    native().netnsReturn(orig);
  }
}
