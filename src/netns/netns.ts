// Named network namespaces (/run/netns/<name>, the layout `ip netns` uses, so operators can
// inspect them with `ip -n <name>`), and running synchronous work inside one.
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

export function deleteNetns(name: string): boolean {
  const p = netnsPath(name);
  if (!fs.existsSync(p)) return false;
  native().netnsUnmount(p);
  fs.rmSync(p, { force: true });
  return true;
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
