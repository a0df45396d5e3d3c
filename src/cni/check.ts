// CHECK: is the pod still wired as prevResult says? Verifies, inside the pod, the interface
// (exists, is up, MAC and MTU as reported), its addresses and the routes; on the host, the veth
// on the bridge; and the address reservation. The first mismatch is a clear error (105).
// prevResult may come from the end of a chain, so a later plugin's changes that it reports
// (e.g. tuning's MAC) are what is checked against.
import { formatIp4, parsePrefix4, type Prefix4 } from '../ip/ipv4';
import { NetlinkError } from '../netlink/errors';
import type { PluginConfig } from './config';
import { CniError, invalidConfig } from './errors';
import { ipamDir, ownerOf } from './ipam';
import { hostVethName } from './names';
import { parseResult } from './result';
import { Rtnl } from './rtnl';
import type { CmdArgs } from './cmd-args';

function mismatch(what: string, details = ''): CniError {
  return new CniError('ERR_CNI_CHECK_FAILED', `CHECK failed: ${what}`, details);
}

function cidr(s: string, field: string): Prefix4 {
  try {
    return parsePrefix4(s);
  } catch {
    throw invalidConfig(field, `must be an IPv4 address/prefix-length, got ${JSON.stringify(s)}`);
  }
}

export function cmdCheck(args: CmdArgs, conf: PluginConfig): void {
  if (!conf.prevResult) throw invalidConfig('prevResult', 'is required for CHECK');
  const prev = parseResult(conf.prevResult);
  const netns = args.netns!;
  const idx = prev.interfaces.findIndex((i) => i.name === args.ifname && (i.sandbox === undefined || i.sandbox === netns));
  if (idx < 0) throw mismatch(`prevResult lists no interface ${args.ifname} in ${netns}`);
  const want = prev.interfaces[idx]!;
  // IPv6 entries (another plugin's) are not twill's to check.
  const ips = prev.ips.filter((ip) => ip.interface === idx && !ip.address.includes(':'));
  if (ips.length === 0) throw mismatch(`prevResult lists no address for ${args.ifname}`);
  ips.forEach((ip, i) => cidr(ip.address, `prevResult.ips[${i}].address`));

  let pod: Rtnl;
  try {
    pod = Rtnl.open(netns);
  } catch (err) {
    throw new CniError('ERR_CNI_UNKNOWN_CONTAINER', `cannot enter network namespace ${netns}`, err instanceof NetlinkError ? err.errnoName : String(err), { cause: err });
  }
  try {
    const link = pod.getLink(args.ifname);
    if (!link) throw mismatch(`interface ${args.ifname} is missing in ${netns}`);
    if (link.kind !== 'veth') throw mismatch(`${args.ifname} is a ${link.kind ?? 'device without kind'}, not a veth`);
    if (!link.up) throw mismatch(`${args.ifname} is down`);
    if (want.mac && link.mac?.toLowerCase() !== want.mac.toLowerCase()) throw mismatch(`${args.ifname} has MAC ${link.mac}, prevResult says ${want.mac}`);
    if (want.mtu && link.mtu !== want.mtu) throw mismatch(`${args.ifname} has MTU ${link.mtu}, prevResult says ${want.mtu}`);

    const have = pod.listAddrs(link.index);
    for (const ip of ips) {
      const [addr, len] = ip.address.split('/');
      if (!have.some((a) => a.ip === addr && String(a.prefixLen) === len)) {
        throw mismatch(`${args.ifname} lacks address ${ip.address}`, `has ${have.map((a) => `${a.ip}/${a.prefixLen}`).join(', ') || 'none'}`);
      }
    }

    const routes = pod.listRoutes();
    const defaultGw = ips.find((ip) => ip.gateway)?.gateway;
    for (const [i, r] of prev.routes.entries()) {
      if (r.dst.includes(':')) continue;
      const dst = cidr(r.dst, `prevResult.routes[${i}].dst`);
      const gw = r.gw ?? defaultGw;
      const found = routes.some((k) => k.dstLen === dst.len && k.dst === formatIp4(dst.ip) && (gw === undefined || k.gateway === gw));
      if (!found) throw mismatch(`route ${r.dst}${gw ? ` via ${gw}` : ''} is missing in ${netns}`);
    }
  } finally {
    pod.close();
  }

  const host = Rtnl.open();
  try {
    const hostName = hostVethName(args.containerId, args.ifname);
    const veth = host.getLink(hostName);
    if (!veth) throw mismatch(`host interface ${hostName} is missing`);
    const bridge = host.getLink(conf.bridge);
    if (!bridge || bridge.kind !== 'bridge') throw mismatch(`bridge ${conf.bridge} is missing`);
    if (veth.master !== bridge.index) throw mismatch(`host interface ${hostName} is not attached to ${conf.bridge}`);
    if (!veth.up) throw mismatch(`host interface ${hostName} is down`);
    if (!bridge.up) throw mismatch(`bridge ${conf.bridge} is down`);
  } finally {
    host.close();
  }

  const dir = ipamDir(conf.dataDir, conf.name);
  for (const ip of ips) {
    const addr = ip.address.split('/')[0]!;
    const owner = ownerOf(dir, addr);
    if (!owner || owner.containerId !== args.containerId || owner.ifname !== args.ifname) {
      throw mismatch(`address ${addr} is not reserved for this container`, owner ? `reserved for ${owner.containerId}/${owner.ifname}` : 'no reservation');
    }
  }
}
