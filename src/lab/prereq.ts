// What `twill-lab up` needs from the machine, checked before anything is created so a
// newcomer gets one clear list of what to do instead of a stack trace halfway through.
import * as fs from 'node:fs';
import { locateNft } from '../firewall/nft';
import { missingSourceFiles } from '../install/install';
import { onPath } from '../install/on-path';

export const ETCD_BIN = '/usr/bin/etcd';

export interface PrereqFacts {
  uid: number;
  etcdPresent: boolean;
  /** nft (Debian nftables): the daemons' masquerade and VXLAN source filter need it. */
  nftPresent: boolean;
  /** Files of the built package that are missing (see install.ts REQUIRED_SOURCE_FILES). */
  missingBuild: string[];
  netnsSupported: boolean;
  /** Only asked for a lab on the wireguard backend: wireguard-go (this kind of kernel has no WireGuard) and wg. */
  wireguard?: { goPresent: boolean; toolsPresent: boolean };
}

/** Problems with a hint each; empty when the lab can start. Pure. */
export function prereqProblems(f: PrereqFacts): string[] {
  const out: string[] = [];
  if (f.uid !== 0) out.push('twill-lab must run as root (it creates network namespaces and veths): run it with sudo');
  if (!f.etcdPresent) out.push(`etcd is not installed (${ETCD_BIN} is missing): apt-get install -y etcd-server`);
  if (!f.nftPresent) out.push('nft is not installed (twilld programs masquerade and the VXLAN source filter with it): apt-get install -y nftables');
  if (f.missingBuild.length > 0) out.push(`twill is not built (missing ${f.missingBuild.join(', ')}): run npm ci && npm run build`);
  if (!f.netnsSupported) out.push('this kernel has no network namespaces (/proc/self/ns/net is missing)');
  if (f.wireguard && !f.wireguard.goPresent) out.push('the wireguard backend needs wireguard-go (userspace WireGuard): apt-get install -y wireguard-go');
  if (f.wireguard && !f.wireguard.toolsPresent) out.push('the wireguard lab checks its hosts with wg: apt-get install -y wireguard-tools');
  return out;
}

export function gatherPrereqFacts(packageRoot: string, wireguard = false): PrereqFacts {
  return {
    ...(wireguard ? { wireguard: { goPresent: onPath('wireguard-go'), toolsPresent: onPath('wg') } } : {}),
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    etcdPresent: isExecutable(ETCD_BIN),
    nftPresent: locateNft() !== null,
    missingBuild: missingSourceFiles(packageRoot),
    netnsSupported: fs.existsSync('/proc/self/ns/net'),
  };
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

