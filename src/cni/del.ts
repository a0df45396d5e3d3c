// DEL: detach a pod. Idempotent and tolerant, as the spec requires: it needs neither the pod
// namespace, nor prevResult, nor the subnet file (the daemon may be down). The host veth is
// found by its derived name and deleted from the host side (its pod end goes with it); the
// address is released by (container ID, ifname). The veth goes first, so an address is never
// free while an interface still uses it; if deleting the veth fails for a reason other than
// "already gone", the address is kept and the error returned, so the runtime retries.
import type { PluginConfig } from './config';
import { ipamDir, releaseByOwner } from './ipam';
import { hostVethName } from './names';
import { Rtnl } from './rtnl';
import type { CmdArgs } from './cmd-args';
import { deleteHostVeth } from './veth';

export function cmdDel(args: CmdArgs, conf: PluginConfig): void {
  const host = Rtnl.open();
  try {
    deleteHostVeth(host, hostVethName(args.containerId, args.ifname));
  } finally {
    host.close();
  }
  releaseByOwner(ipamDir(conf.dataDir, conf.name), { containerId: args.containerId, ifname: args.ifname });
}
