// Which install root a program runs from. An install under --root (the lab's <labdir>/root) is
// self-contained: its programs use that root's settings file and caches, never the machine's —
// `twillctl` in the lab read the machine's /etc/twill/twilld.env, and the lab's daemons filled
// the machine-wide /var/cache/twill/twilld, which `down` then left behind (issue 16).
// Pure, and import-free: the CNI plugin's launcher uses it on every cold start.

/**
 * The install root of code in `dir` (a directory inside a release, e.g. its dist/src/cmd), or
 * undefined when it does not run from an install (a checkout). "/" on a real host.
 */
export function installRootOf(dir: string): string | undefined {
  const m = /^(.*)\/opt\/twill\/(?:releases\/[^/]+|current)\/dist\/src(?:\/[^/]+)?$/.exec(dir);
  if (!m) return undefined;
  return m[1] === '' ? '/' : m[1];
}

/** `<root>/<rel>` for the root code in `dir` runs from; `/<rel>` from a checkout. */
export function underOwnRoot(dir: string, rel: string): string {
  const root = installRootOf(dir) ?? '/';
  return `${root === '/' ? '' : root}/${rel}`;
}
