// STATUS (CNI 1.1): can this plugin serve ADD right now? Not while the daemon has not written
// the subnet file (or wrote one we cannot use), and not when the host subnet is full.
import type { PluginConfig } from './config';
import { CniError } from './errors';
import { loadHostSubnet } from './host-subnet';
import { ipamDir, listAllocations, usableCount } from './ipam';

export function cmdStatus(conf: PluginConfig): void {
  let hs: ReturnType<typeof loadHostSubnet>;
  try {
    hs = loadHostSubnet(conf.subnetFile);
  } catch (err) {
    const e = err as CniError;
    throw new CniError('ERR_CNI_NOT_AVAILABLE', `twill is not ready: ${e.message}`, e.details ?? '', { cause: err });
  }
  const used = listAllocations(ipamDir(conf.dataDir, conf.name)).length;
  const usable = usableCount(hs.subnet, hs.gateway);
  if (used >= usable) {
    throw new CniError('ERR_CNI_NOT_AVAILABLE', `twill cannot add pods: all ${usable} addresses of the host subnet are allocated`, 'DEL or GC stale pods');
  }
}
