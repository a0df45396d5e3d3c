// What `twillctl install` puts where, and the text of the small files it generates. Pure.
//
// Layout under the install root (a real host: "/"; the lab: <labdir>/root):
//   opt/twill/releases/<id>/         one complete release: package.json, dist/src, the native
//                                    addon, production node_modules, systemd/ (for reinstall)
//   opt/twill/current -> releases/<id>   switched with one rename(2), so a CNI ADD that starts
//                                    during an upgrade runs entirely the old or the new release
//   usr/local/bin/twilld, twillctl   wrappers
//   opt/cni/bin/twill                the CNI plugin: the native front-end (native/cni_front.c),
//                                    which hands calls to `twill serve` or else execs
//   opt/twill/libexec/twill-cni      the Node plugin's wrapper (also runs `twill-cni serve`);
//                                    the front-end finds it at ../../twill/libexec/twill-cni from
//                                    its own directory (binding.gyp's TWILL_FALLBACK_REL)
//   etc/systemd/system/twilld.service, twill-cni.service, etc/twill/twilld.env,
//   etc/cni/net.d/10-twill.conflist
//
// Wrappers find the release relative to their own location (readlink -f "$0"), so the same
// files work at "/" and under any --root (the lab runs them from <labdir>/root), and they name
// the Node.js binary by absolute path because a container runtime runs CNI plugins with a
// minimal PATH.
import * as path from 'node:path';

export const RELEASES_DIR = 'opt/twill/releases';
export const CURRENT_LINK = 'opt/twill/current';
export const BIN_DIR = 'usr/local/bin';
export const CNI_BIN_DIR = 'opt/cni/bin';
export const CNI_CONF_DIR = 'etc/cni/net.d';
export const UNIT_DIR = 'etc/systemd/system';
/** Unit files, from the package's systemd/ directory. */
export const UNITS = ['twilld.service', 'twill-cni.service'] as const;
export const ENV_PATH = 'etc/twill/twilld.env';
export const CONFLIST_PATH = `${CNI_CONF_DIR}/10-twill.conflist`;
export const CNI_PLUGIN_PATH = `${CNI_BIN_DIR}/twill`;
/** The native front-end inside a release (and the package); copied to CNI_PLUGIN_PATH. */
export const CNI_FRONT_BINARY = 'build/Release/twill-cni';
/** The Node plugin, where the front-end looks for it (see the layout above). */
export const CNI_NODE_PLUGIN_PATH = 'opt/twill/libexec/twill-cni';

/** Defaults the daemon and the CNI plugin agree on (see twilld --help). */
export const SUBNET_FILE = '/run/twill/subnet.env';
export const CNI_DATA_DIR = '/var/lib/cni/twill';

export interface Wrapper {
  /** Path relative to the install root. */
  path: string;
  /** Entry script relative to the release root. */
  script: string;
  /** Node.js flags it runs with. */
  nodeFlags?: readonly string[];
  /** Environment it sets for node (exported before the exec). */
  env?: Readonly<Record<string, string>>;
}

/**
 * twilld's V8 flags (issue 13: RSS ≤ 100 MB at 10,000 peers). Only command-line flags work:
 * set at run time, V8 ignores them.
 * - A young generation of 2 MB semispaces instead of V8's up to 16 MB: at 10,000 peers the cold
 *   start's burst of short-lived objects otherwise leaves ~25 MB of RSS committed for good
 *   (RSS 145 → 120 MB; join latency and CPU per event unchanged within noise).
 * - --expose-gc: the daemon collects once after each full convergence, when a burst's garbage
 *   is dead (src/daemon/burst-collector.ts); nothing on the lease-event path calls it.
 */
export const TWILLD_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--expose-gc'];

/**
 * twilld's environment (issue 13): glibc's malloc with at most 2 arenas instead of up to 8 per
 * core. The daemon's JS runs on one thread, but V8's GC workers and libuv's pool each got an
 * arena of their own and kept its freed memory: ~5 MB of RSS at 10,000 peers (113 → 109 MB at
 * rest in `bench/overlay` section 4; join latency and CPU per event unchanged within noise).
 * And a fixed mmap threshold of 128 KB (glibc's initial value): glibc otherwise raises it each
 * time a large block is freed (up to 32 MB), so the large transient buffers of a full
 * convergence (netlink dumps, listings) end up inside the main arena, fragment it and stay
 * resident. Fixed, they get mappings of their own that go back at free: RSS at rest at 10,000
 * peers, sampled every 5 s, 101.7–106.9 → 98.3–102.8 MB (`bench/overlay --rest-s`, one run each;
 * join latency and idle CPU unchanged within noise).
 * The installed wrapper exports it, and the lab starts its daemons with it.
 */
export const TWILLD_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072' };

export const WRAPPERS: readonly Wrapper[] = [
  // The daemon's cold start is measured (issue 2): the bundled, code-cached build (scripts/bundle-daemon.mjs).
  { path: `${BIN_DIR}/twilld`, script: 'dist/src/cmd/twilld-bundle.js', nodeFlags: TWILLD_NODE_FLAGS, env: TWILLD_ENV },
  { path: `${BIN_DIR}/twillctl`, script: 'dist/src/cmd/twillctl.js' },
  // The CNI plugin starts once per pod: the bundled, code-cached build (scripts/bundle-cni.mjs).
  { path: CNI_NODE_PLUGIN_PATH, script: 'dist/src/cmd/twill-cni.js' },
];

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function renderWrapper(w: Wrapper, nodePath: string): string {
  const depth = w.path.split('/').length - 1; // directories between the root and the wrapper
  const up = Array.from({ length: depth }, () => '..').join('/');
  const name = path.basename(w.path);
  return [
    '#!/bin/sh',
    `# ${name}: installed by \`twillctl install\`. Runs the current twill release with the Node.js`,
    '# it was installed with; paths are relative to this file so installs under --root work too.',
    'root=$(dirname "$(readlink -f "$0")")/' + up,
    ...Object.entries(w.env ?? {}).map(([k, v]) => `export ${k}=${shQuote(v)}`),
    `exec ${[nodePath, ...(w.nodeFlags ?? [])].map(shQuote).join(' ')} "$root/${CURRENT_LINK}/${w.script}" "$@"`,
    '',
  ].join('\n');
}

/** The CNI network configuration list: twill for pod addressing, then portmap for hostPorts. */
export function renderConflist(): string {
  return (
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: 'twill',
        plugins: [
          { type: 'twill', subnetFile: SUBNET_FILE, dataDir: CNI_DATA_DIR },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ) + '\n'
  );
}

export interface EnvSettings {
  etcdEndpoints?: string;
  iface?: string;
}

/**
 * The environment file from its template (systemd/twilld.env) with the given settings filled
 * in: an existing `TWILLD_X=` line (commented out or not) is replaced, else one is appended.
 */
export function renderEnvFile(template: string, settings: EnvSettings): string {
  let text = template.endsWith('\n') ? template : template + '\n';
  const set = (name: string, value: string | undefined): void => {
    if (value === undefined) return;
    const re = new RegExp(`^#?\\s*${name}=.*$`, 'm');
    const line = `${name}=${value}`;
    text = re.test(text) ? text.replace(re, line) : text + line + '\n';
  };
  set('TWILLD_ETCD_ENDPOINTS', settings.etcdEndpoints);
  set('TWILLD_IFACE', settings.iface);
  return text;
}

/** Release directory name: version plus a UTC timestamp, unique even for reinstalls of one version. */
export function releaseId(version: string, now: Date, unique: string): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${version}-${ts}-${unique}`;
}
