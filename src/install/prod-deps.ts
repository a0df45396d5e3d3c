// The production dependency closure of a package tree: which node_modules directories an
// installed twill needs at run time. Resolved the way Node resolves `require` (nearest
// node_modules walking up, never above the package root), starting from package.json's
// dependencies and optionalDependencies. Reading package.json files instead of the lockfile
// keeps this working when installing from an already installed copy (which has no lockfile),
// and asking npm is not an option: a host being installed may have node but no npm.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstallError } from './errors';

interface PackageJson {
  name?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

function readPackageJson(dir: string): PackageJson {
  const file = path.join(dir, 'package.json');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as PackageJson;
  } catch (err) {
    throw new InstallError('ERR_INSTALL_SOURCE', `cannot read ${file}`, { path: file, cause: err });
  }
}

/** The directory `name` resolves to when required from `fromDir`, or null. */
function resolvePackage(root: string, fromDir: string, name: string): string | null {
  for (let d = fromDir; ; d = path.dirname(d)) {
    const candidate = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (d === root || !d.startsWith(root + path.sep)) return null;
  }
}

/**
 * Package directories (relative to `root`, e.g. "node_modules/etcd3" or
 * "node_modules/yargs/node_modules/strip-ansi") that the root package needs at run time, sorted.
 */
export function productionPackages(root: string): string[] {
  const absRoot = path.resolve(root);
  const found = new Set<string>();
  const queue: string[] = [absRoot];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    const pkg = readPackageJson(dir);
    const wanted: Array<[string, boolean]> = [
      ...Object.keys(pkg.dependencies ?? {}).map((n): [string, boolean] => [n, false]),
      ...Object.keys(pkg.optionalDependencies ?? {}).map((n): [string, boolean] => [n, true]),
      // npm >= 7 installs peers; one it could not install is only fatal if it is required.
      ...Object.keys(pkg.peerDependencies ?? {}).map((n): [string, boolean] => [n, true]),
    ];
    for (const [name, optional] of wanted) {
      const at = resolvePackage(absRoot, dir, name);
      if (at === null) {
        if (optional) continue;
        throw new InstallError('ERR_INSTALL_SOURCE', `dependency "${name}" of ${pkg.name ?? dir} is not installed under ${absRoot}; run \`npm ci\` first`, {
          path: dir,
        });
      }
      if (found.has(at)) continue;
      found.add(at);
      queue.push(at);
    }
  }
  return [...found].map((d) => path.relative(absRoot, d)).sort();
}
