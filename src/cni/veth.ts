// A pod's veth pair: the host end (deterministic name, enslaved to the bridge) and the pod end,
// created directly inside the pod namespace under CNI_IFNAME, in one netlink message. Then the
// pod side is brought up with its address, `lo` up and a default route via the gateway.
//
// EEXIST on creation is ambiguous (either end's name may be taken), so it is resolved by
// looking: an existing CNI_IFNAME in the pod is the spec's "interface already exists" error;
// an existing host end means this (container, ifname) is already attached somewhere.
// Nothing that existed before the call is ever deleted by its rollback.
import * as fs from 'node:fs';
import { CniError } from './errors';
import { build, type Link } from './rtnl-codec';
import type { Rtnl } from './rtnl';
import type { NetlinkError } from '../netlink/errors';

export interface VethSpec {
  hostName: string;
  hostMac: string;
  podName: string;
  podMac: string;
  mtu: number;
  bridgeIndex: number;
  hairpin: boolean;
}

export function createVeth(host: Rtnl, pod: Rtnl, podNetnsFd: number, v: VethSpec): void {
  const reqs = [build.vethCreate({ name: v.hostName, mac: v.hostMac, mtu: v.mtu, master: v.bridgeIndex, peerName: v.podName, peerMac: v.podMac, peerNetnsFd: podNetnsFd })];
  if (v.hairpin) reqs.push(build.bridgePortHairpin(v.hostName, true));
  const [createErr, hairpinErr] = host.batch(reqs, 'create');
  if (createErr) throw explainCreateError(host, pod, v, createErr);
  if (hairpinErr) {
    // The pair exists now: remove it before reporting, so the caller's rollback stays simple.
    host.batch([build.linkDelete(v.hostName)], 'delete');
    throw hairpinErr;
  }
}

function explainCreateError(host: Rtnl, pod: Rtnl, v: VethSpec, err: NetlinkError): Error {
  if (err.errnoName !== 'EEXIST') return err;
  if (pod.getLink(v.podName)) {
    return new CniError('ERR_CNI_IFACE_EXISTS', `interface ${v.podName} already exists in the container`, 'the spec forbids ADD over an existing interface: DEL first');
  }
  if (host.getLink(v.hostName)) {
    return new CniError('ERR_CNI_HOST_VETH_EXISTS', `host interface ${v.hostName} for this container and ifname already exists`, 'an earlier ADD of the same (container ID, ifname) was not deleted: DEL first');
  }
  return err;
}

/** Address, loopback and default route inside the pod. Returns the pod interface. */
export function configurePod(pod: Rtnl, ifname: string, ip: string, prefixLen: number, gateway: string): Link {
  const link = pod.getLink(ifname);
  if (!link) throw new CniError('ERR_CNI_NETLINK', `interface ${ifname} is missing in the container right after its creation`);
  const errs = pod.batch(
    [
      build.linkSet('lo', { up: true }),
      build.linkSet(ifname, { up: true }),
      build.addrReplace(link.index, ip, prefixLen),
      build.routeReplace({ dst: '0.0.0.0', dstLen: 0, gateway, oif: link.index }),
    ],
    'configure',
  );
  const err = errs.find((e) => e !== null);
  if (err) throw err;
  return link;
}

/** Deletes the host end (the pod end goes with it). false when it was already gone. */
export function deleteHostVeth(host: Rtnl, name: string): boolean {
  const [err] = host.batch([build.linkDelete(name)], 'delete');
  if (!err) return true;
  if (err.errnoName === 'ENODEV' || err.errnoName === 'ENOENT') return false;
  throw err;
}

/** Opens CNI_NETNS for IFLA_NET_NS_FD; a missing namespace is the spec's error 3. */
export function openNetns(netns: string): number {
  try {
    return fs.openSync(netns, 'r');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new CniError('ERR_CNI_UNKNOWN_CONTAINER', `network namespace ${netns} does not exist`, code, { cause: err });
    }
    throw err;
  }
}
