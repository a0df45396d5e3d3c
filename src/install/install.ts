// `twillctl install`: puts a built twill package onto a host (or under --root). The lab and the
// Vagrant provisioning install through this same function, so the path operators use is the
// path the tests exercise.
//
// Upgrade rules: programs are replaced (a new release directory, then one atomic switch of
// opt/twill/current); the unit file is ours and is replaced (operators customise through
// drop-ins in twilld.service.d/); the environment file and the conflist are the operator's and
// are never overwritten once present. Releases other than the new and the previous one are
// pruned: the previous one may still be what a not-yet-restarted twilld runs from. Installs into
// one root are serialised (install-lock.ts), and what `current` points to when pruning is never
// pruned, whoever switched it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseDaemonArgs } from '../config/daemon';
import { writeFileAtomic } from '../base/atomic-write';
import { locateNft } from '../firewall/nft';
import { InstallError } from './errors';
import { lockInstallRoot } from './install-lock';
import { productionPackages } from './prod-deps';
import {
  CONFLIST_PATH,
  CURRENT_LINK,
  ENV_PATH,
  RELEASES_DIR,
  CNI_FRONT_BINARY,
  CNI_PLUGIN_PATH,
  UNIT_DIR,
  UNITS,
  WRAPPERS,
  releaseId,
  renderConflist,
  renderEnvFile,
  renderWrapper,
} from './layout';

export interface InstallOptions {
  /** Install root; "/" on a real host. */
  root: string;
  /** Package to install from; default: the package this code runs from. */
  sourceRoot?: string;
  /** Written into a new environment file only (an existing one is kept). */
  etcdEndpoints?: string;
  /** Written into a new environment file only (an existing one is kept). */
  iface?: string;
  /** Node.js the wrappers run; default: the one running this install. */
  nodePath?: string;
  now?: Date;
  /** Told once when another install into the same root runs and this one waits for it. */
  onWait?: (holderPid: number | undefined) => void;
}

export interface InstallResult {
  root: string;
  /** Absolute path of the new release directory. */
  release: string;
  /** Paths relative to the root that were (re)written. */
  written: string[];
  /** Paths relative to the root that already existed and were left as they were. */
  kept: string[];
  /** Old release directories removed (relative to the root). */
  pruned: string[];
  /** What this host still lacks for twilld to run fully (packages to install), one line each. */
  warnings: string[];
}

/** Host prerequisites twilld needs at run time that an install cannot provide. Pure. */
export function hostWarnings(f: { nftPresent: boolean }): string[] {
  return f.nftPresent ? [] : ['nft is not installed: twilld needs it for masquerade and the VXLAN source filter (apt-get install -y nftables)'];
}


/** Root of the package this code runs from (dist/src/install -> three levels up). */
export function ownPackageRoot(): string {
  return path.resolve(__dirname, '..', '..', '..');
}

/** Files a package must have to be installable, relative to its root. */
export const REQUIRED_SOURCE_FILES = [
  'package.json',
  'dist/src/cmd/twilld.js',
  'dist/src/cmd/twilld-bundle.js',
  'dist/src/cmd/twilld-bundle.payload',
  'dist/src/cmd/twillctl.js',
  'dist/src/cmd/twill.js',
  'dist/src/cmd/twill-cni.js',
  'build/Release/twill_native.node',
  CNI_FRONT_BINARY,
  'systemd/twilld.service',
  'systemd/twill-cni.service',
  'systemd/twilld.env',
];

export function missingSourceFiles(sourceRoot: string): string[] {
  return REQUIRED_SOURCE_FILES.filter((f) => !fs.existsSync(path.join(sourceRoot, f)));
}

function checkSettings(opts: InstallOptions): void {
  // The daemon's own flag parser is the judge of what it will accept later.
  const argv: string[] = [];
  if (opts.etcdEndpoints !== undefined) argv.push('--etcd-endpoints', opts.etcdEndpoints);
  if (opts.iface !== undefined) argv.push('--iface', opts.iface);
  try {
    parseDaemonArgs(argv, {});
  } catch (err) {
    throw new InstallError('ERR_INSTALL_SETTING', (err as Error).message, { cause: err });
  }
  for (const v of [opts.etcdEndpoints, opts.iface]) {
    // One line of an environment file; systemd would also split on unquoted whitespace.
    if (v !== undefined && /[\s"'\\#]/.test(v)) throw new InstallError('ERR_INSTALL_SETTING', `value "${v}" must not contain blanks, quotes, '#' or '\\'`);
  }
}

function checkNode(nodePath: string): void {
  if (!path.isAbsolute(nodePath)) throw new InstallError('ERR_INSTALL_SETTING', `--node must be an absolute path: ${nodePath}`);
  try {
    fs.accessSync(nodePath, fs.constants.X_OK);
  } catch (err) {
    throw new InstallError('ERR_INSTALL_SETTING', `--node ${nodePath} is not an executable file`, { path: nodePath, cause: err });
  }
}

/** Top-level directories of a dependency that are never needed at run time. */
const PACKAGE_EXTRAS = ['test', 'tests', '__tests__', 'benchmarks', 'benchmark', 'bench', 'docs', 'doc', 'example', 'examples', 'coverage', '.github'];

/** Type declarations, TypeScript sources and source maps: Node never loads them. */
const NOT_RUNTIME_FILE = /\.(?:d\.[cm]?ts|[cm]?ts|map)$/;

function copyTree(from: string, to: string, skip: (src: string) => boolean = () => false): void {
  fs.cpSync(from, to, { recursive: true, filter: (src) => !skip(src) });
}

/** Copies everything a release needs into `dest` (which must not exist). */
function stageRelease(src: string, dest: string): void {
  fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
  fs.copyFileSync(path.join(src, 'package.json'), path.join(dest, 'package.json'));
  copyTree(path.join(src, 'dist', 'src'), path.join(dest, 'dist', 'src'));
  fs.mkdirSync(path.join(dest, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(path.join(src, 'build', 'Release', 'twill_native.node'), path.join(dest, 'build', 'Release', 'twill_native.node'));
  fs.chmodSync(path.join(dest, 'build', 'Release', 'twill_native.node'), 0o755);
  fs.copyFileSync(path.join(src, CNI_FRONT_BINARY), path.join(dest, CNI_FRONT_BINARY));
  fs.chmodSync(path.join(dest, CNI_FRONT_BINARY), 0o755);
  copyTree(path.join(src, 'systemd'), path.join(dest, 'systemd'));
  // The unit's Documentation= points here.
  if (fs.existsSync(path.join(src, 'README.md'))) fs.copyFileSync(path.join(src, 'README.md'), path.join(dest, 'README.md'));
  for (const rel of productionPackages(src)) {
    const from = path.join(src, rel);
    // Nested node_modules hold packages of their own; the closure lists the ones needed.
    // A package's own tests, benchmarks and docs are not run here (pino's test fixtures alone
    // are ~400 MB of prebuilt binaries).
    const skip = new Set([path.join(from, 'node_modules'), ...PACKAGE_EXTRAS.map((d) => path.join(from, d))]);
    // Files only: a directory may well be called "x.map" (lodash.map is a package).
    copyTree(from, path.join(dest, rel), (p) => skip.has(p) || (NOT_RUNTIME_FILE.test(p) && fs.lstatSync(p).isFile()));
  }
}

function readLinkOrNull(p: string): string | null {
  try {
    return fs.readlinkSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EINVAL') throw new InstallError('ERR_INSTALL_TARGET', `${p} exists and is not a symlink; move it away`, { path: p });
    throw err;
  }
}

export async function install(opts: InstallOptions): Promise<InstallResult> {
  const lock = await lockInstallRoot(path.resolve(opts.root), opts.onWait ? { onWait: opts.onWait } : {});
  try {
    return await installLocked(opts);
  } finally {
    await lock.release();
  }
}

async function installLocked(opts: InstallOptions): Promise<InstallResult> {
  const root = path.resolve(opts.root);
  const src = path.resolve(opts.sourceRoot ?? ownPackageRoot());
  const nodePath = opts.nodePath ?? process.execPath;
  checkSettings(opts);
  checkNode(nodePath);
  const missing = missingSourceFiles(src);
  if (missing.length > 0) {
    throw new InstallError('ERR_INSTALL_SOURCE', `${src} is not a built twill package (missing: ${missing.join(', ')}); run \`npm ci && npm run build\``, {
      path: src,
    });
  }
  const version = (JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8')) as { version: string }).version;
  const written: string[] = [];
  const kept: string[] = [];

  // 1. The release, staged under a hidden name and renamed into place whole.
  const releases = path.join(root, RELEASES_DIR);
  fs.mkdirSync(releases, { recursive: true, mode: 0o755 });
  const id = releaseId(version, opts.now ?? new Date(), randomBytes(3).toString('hex'));
  const staging = path.join(releases, `.staging-${id}`);
  try {
    stageRelease(src, staging);
    fs.renameSync(staging, path.join(releases, id));
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  written.push(`${RELEASES_DIR}/${id}`);

  // 2. Switch `current` with one rename of a fresh symlink over the old one.
  const current = path.join(root, CURRENT_LINK);
  const previous = readLinkOrNull(current);
  const tmpLink = `${current}.tmp-${process.pid}`;
  fs.rmSync(tmpLink, { force: true });
  fs.symlinkSync(path.relative(path.dirname(current), path.join(releases, id)), tmpLink);
  fs.renameSync(tmpLink, current);
  written.push(CURRENT_LINK);

  // 3. Wrappers, the CNI front-end and the units: ours, always replaced. The front-end is a
  // copy, not a link into the release: runtimes may copy or stat plugins, and it only carries
  // bytes (its wire format is versioned), so any release's copy works with any server.
  for (const w of WRAPPERS) {
    await writeFileAtomic(path.join(root, w.path), renderWrapper(w, nodePath), { mode: 0o755, durable: true, mkdirs: true });
    written.push(w.path);
  }
  await writeFileAtomic(path.join(root, CNI_PLUGIN_PATH), fs.readFileSync(path.join(src, CNI_FRONT_BINARY)), { mode: 0o755, durable: true, mkdirs: true });
  written.push(CNI_PLUGIN_PATH);
  for (const unit of UNITS) {
    const rel = `${UNIT_DIR}/${unit}`;
    await writeFileAtomic(path.join(root, rel), fs.readFileSync(path.join(src, 'systemd', unit), 'utf8'), { mode: 0o644, durable: true, mkdirs: true });
    written.push(rel);
  }

  // 4. Operator-owned configuration: written once, then left alone.
  const envText = renderEnvFile(fs.readFileSync(path.join(src, 'systemd', 'twilld.env'), 'utf8'), {
    ...(opts.etcdEndpoints !== undefined ? { etcdEndpoints: opts.etcdEndpoints } : {}),
    ...(opts.iface !== undefined ? { iface: opts.iface } : {}),
  });
  for (const [rel, text] of [
    [ENV_PATH, envText],
    [CONFLIST_PATH, renderConflist()],
  ] as const) {
    if (fs.existsSync(path.join(root, rel))) {
      kept.push(rel);
      continue;
    }
    await writeFileAtomic(path.join(root, rel), text, { mode: 0o644, durable: true, mkdirs: true });
    written.push(rel);
  }

  // 5. Prune releases that are neither the new one nor the one just replaced.
  const pruned: string[] = [];
  // `current` is read again: whatever it points to now is in use, whoever switched it.
  const now = readLinkOrNull(current);
  const keep = new Set([id, previous === null ? '' : path.basename(previous), now === null ? '' : path.basename(now)]);
  for (const name of fs.readdirSync(releases)) {
    if (keep.has(name) || name.startsWith('.staging-')) continue;
    fs.rmSync(path.join(releases, name), { recursive: true, force: true });
    pruned.push(`${RELEASES_DIR}/${name}`);
  }

  return { root, release: path.join(releases, id), written, kept, pruned, warnings: hostWarnings({ nftPresent: locateNft() !== null }) };
}
