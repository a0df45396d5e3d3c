// ADD: attach a pod to the host bridge (the shape of the reference ptp/bridge plugins, with
// IPAM built in). Linear steps; each step that creates something registers its undo, and any
// failure runs the undos in reverse, so a failed ADD leaves nothing behind: no reservation,
// no veth. Shared things (the bridge, its address, ip_forward) are not undone.
import * as fs from 'node:fs';
import { formatIp4 } from '../ip/ipv4';
import { NetlinkError } from '../netlink/errors';
import type { PluginConfig } from './config';
import { CniError } from './errors';
import { loadHostSubnet } from './host-subnet';
import { allocate, ipamDir, releaseIp, type Owner } from './ipam';
import { hostVethMac, hostVethName, macForIp } from './names';
import { mergeResults, parseResult, type CniResult } from './result';
import { Rtnl } from './rtnl';
import type { CmdArgs } from './cmd-args';
import { ensureBridge, ensureIpForward } from './bridge';
import { configurePod, createVeth, deleteHostVeth, openNetns } from './veth';

export function cmdAdd(args: CmdArgs, conf: PluginConfig): CniResult {
  const netns = args.netns!;
  const owner: Owner = { containerId: args.containerId, ifname: args.ifname };
  const hs = loadHostSubnet(conf.subnetFile);
  const mtu = conf.mtu ?? hs.mtu;
  const gateway = formatIp4(hs.gateway);
  const dir = ipamDir(conf.dataDir, conf.name);
  const prev = conf.prevResult ? parseResult(conf.prevResult) : undefined;

  // The namespace first: a bad CNI_NETNS must fail before anything is allocated.
  const nsFd = openNetns(netns);
  const undo: Array<() => void> = [];
  let pod: Rtnl | undefined;
  let host: Rtnl | undefined;
  try {
    pod = openPodRtnl(netns);
    host = Rtnl.open();

    const ipNum = allocate(dir, hs.subnet, hs.gateway, owner);
    undo.push(() => releaseIp(dir, ipNum, owner));
    const ip = formatIp4(ipNum);

    ensureIpForward();
    const bridge = ensureBridge(host, conf.bridge, hs, mtu);

    const hostName = hostVethName(owner.containerId, owner.ifname);
    const hostMac = hostVethMac(owner.containerId, owner.ifname);
    const podMac = macForIp(ip);
    createVeth(host, pod, nsFd, { hostName, hostMac, podName: args.ifname, podMac, mtu, bridgeIndex: bridge.index, hairpin: conf.hairpinMode });
    const h = host;
    undo.push(() => deleteHostVeth(h, hostName));

    configurePod(pod, args.ifname, ip, hs.subnet.len, gateway);

    const ours: CniResult = {
      interfaces: [
        { name: hostName, mac: hostMac, mtu },
        { name: args.ifname, mac: podMac, mtu, sandbox: netns },
      ],
      ips: [{ address: `${ip}/${hs.subnet.len}`, gateway, interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: gateway }],
      dns: conf.dns,
    };
    return mergeResults(prev, ours);
  } catch (err) {
    for (const u of undo.reverse()) {
      try {
        u();
      } catch {
        // Keep undoing; the original error is what the runtime needs to see.
      }
    }
    throw err;
  } finally {
    pod?.close();
    host?.close();
    fs.closeSync(nsFd);
  }
}

function openPodRtnl(netns: string): Rtnl {
  try {
    return Rtnl.open(netns);
  } catch (err) {
    // setns() refuses a file that is not a network namespace (EINVAL); it may also have
    // vanished since it was opened. Anything else (EPERM...) is not the container's fault.
    if (err instanceof NetlinkError && (err.errnoName === 'EINVAL' || err.errnoName === 'ENOENT')) {
      throw new CniError('ERR_CNI_UNKNOWN_CONTAINER', `${netns} is not a usable network namespace`, `${err.errnoName}`, { cause: err });
    }
    throw err;
  }
}
