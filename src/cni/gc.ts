// GC (CNI 1.1): the runtime lists the attachments that are still valid; everything else twill
// holds for this network goes: address reservations (the host-local "no IP addresses
// available" leak after crashes and missed DELs) and host veths on this network's bridge whose
// derived name matches no valid attachment. Errors are collected and reported together; one
// failure does not stop the rest.
import type { PluginConfig } from './config';
import { CniError, invalidConfig } from './errors';
import { attachmentKey, ipamDir, releaseAllExcept } from './ipam';
import { HOST_VETH_NAME, hostVethName } from './names';
import { Rtnl } from './rtnl';
import { deleteHostVeth } from './veth';

export interface GcReport {
  releasedIps: string[];
  deletedLinks: string[];
}

export function cmdGc(conf: PluginConfig): GcReport {
  // Without the list, "everything else" would be every pod: refuse rather than guess.
  if (conf.validAttachments === undefined) throw invalidConfig('cni.dev/valid-attachments', 'is required for GC');
  const valid = new Set(conf.validAttachments.map(attachmentKey));
  const validLinks = new Set(conf.validAttachments.map((a) => hostVethName(a.containerId, a.ifname)));

  const { released, errors } = releaseAllExcept(ipamDir(conf.dataDir, conf.name), valid);
  const deleted: string[] = [];
  const host = Rtnl.open();
  try {
    const bridge = host.getLink(conf.bridge);
    if (bridge) {
      for (const l of host.listLinks({ kind: 'veth', master: bridge.index })) {
        if (!HOST_VETH_NAME.test(l.name) || validLinks.has(l.name)) continue;
        try {
          if (deleteHostVeth(host, l.name)) deleted.push(l.name);
        } catch (err) {
          errors.push(`${l.name}: ${(err as Error).message}`);
        }
      }
    }
  } finally {
    host.close();
  }
  if (errors.length > 0) {
    throw new CniError('ERR_CNI_GC_INCOMPLETE', `GC left ${errors.length} stale resource(s) behind`, errors.join('; '));
  }
  return { releasedIps: released, deletedLinks: deleted };
}
