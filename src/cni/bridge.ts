// The host side every pod shares: the `twill0` bridge holding the gateway address, and IPv4
// forwarding. Both are ensured on every ADD (cheap, idempotent) rather than only at creation,
// so a bridge someone deleted or downed, or a changed MTU in the subnet file, converges with
// the next pod.
//
// The bridge gets a fixed MAC (derived from the gateway address) at creation: a Linux bridge
// without an administratively set address takes the lowest MAC of its ports, so it would change
// whenever pods come and go, and every pod's ARP entry for its gateway would go stale.
import * as fs from 'node:fs';
import { formatIp4 } from '../ip/ipv4';
import { CniError } from './errors';
import { macForIp } from './names';
import { build, type Link } from './rtnl-codec';
import type { Rtnl } from './rtnl';
import type { HostSubnet } from './host-subnet';

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

/** Turns on IPv4 forwarding in our (the host's) namespace, writing only when it is off. */
export function ensureIpForward(file = IP_FORWARD): void {
  if (fs.readFileSync(file, 'utf8').trim() !== '1') fs.writeFileSync(file, '1');
}

export function ensureBridge(host: Rtnl, name: string, s: HostSubnet, mtu: number): Link {
  const gw = formatIp4(s.gateway);
  let link = host.getLink(name);
  if (!link) {
    // Parallel ADDs race to create it: EEXIST means another one won, which is fine.
    const [err] = host.batch([build.bridgeCreate(name, mtu, macForIp(gw))], 'create');
    if (err && err.errnoName !== 'EEXIST') throw err;
    link = host.getLink(name);
    if (!link) throw new CniError('ERR_CNI_BRIDGE_CONFLICT', `bridge ${name} vanished right after creation`);
  }
  if (link.kind !== 'bridge') {
    throw new CniError('ERR_CNI_BRIDGE_CONFLICT', `${name} exists and is not a bridge (kind ${link.kind ?? 'none'})`, 'remove it or set "bridge" in the network config');
  }
  const reqs = [build.addrReplace(link.index, gw, s.subnet.len)];
  if (!link.up || link.mtu !== mtu) reqs.unshift(build.linkSet(name, { up: true, mtu }));
  const errs = host.batch(reqs, 'configure');
  const err = errs.find((e) => e !== null);
  if (err) throw err;
  return link;
}
