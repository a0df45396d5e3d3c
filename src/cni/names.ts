// Names and MAC addresses the plugin derives instead of storing: DEL and GC find a pod's host
// veth from (container ID, ifname) alone, even after the pod namespace is gone.
import { ip4Bytes, readMac } from '../ip/bytes';
import { sha256 } from './sha256';

/** "tw" + 11 hex chars: 13 chars, under IFNAMSIZ-1 (15); 44 bits make collisions negligible. */
export function hostVethName(containerId: string, ifname: string): string {
  return `tw${Buffer.from(hostVethDigest(containerId, ifname)).toString('hex').slice(0, 11)}`;
}

export const HOST_VETH_NAME = /^tw[0-9a-f]{11}$/;

function hostVethDigest(containerId: string, ifname: string): Uint8Array {
  return sha256(Buffer.from(`${containerId}/${ifname}`, 'utf8'));
}

/** Locally administered unicast MAC from the same digest (bytes past the ones in the name). */
export function hostVethMac(containerId: string, ifname: string): string {
  const d = hostVethDigest(containerId, ifname);
  return readMac([(d[8]! & 0xfc) | 0x02, d[9]!, d[10]!, d[11]!, d[12]!, d[13]!], 0);
}

/**
 * 0a:58 + the IPv4 address (the scheme OVN-Kubernetes uses): a pod's MAC follows its address,
 * so neighbours' ARP entries stay right when an address is handed to a new pod, and the bridge
 * (which gets the gateway's) can never collide with a pod.
 */
export function macForIp(ip: string): string {
  return readMac([0x0a, 0x58, ...ip4Bytes(ip)], 0);
}
