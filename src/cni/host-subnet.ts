// The host's pod subnet, from the daemon's subnet file (flannel format). A missing file means
// twilld has not leased a subnet yet (or is restarting): ADD answers "try again later" (11) so
// the runtime retries, STATUS answers "not available" (50).
import { readSubnetFileSync, parseSubnetEnv } from '../subnet/subnet-file';
import { firstHost, formatIp4, parsePrefix4, type Ip4, type Prefix4 } from '../ip/ipv4';
import { CniError } from './errors';

export interface HostSubnet {
  subnet: Prefix4;
  /** First address of the subnet: the bridge's address and the pods' default gateway. */
  gateway: Ip4;
  mtu: number;
}

export function loadHostSubnet(file: string): HostSubnet {
  let record: Record<string, string> | null;
  try {
    record = readSubnetFileSync(file);
  } catch (err) {
    throw new CniError('ERR_CNI_IO', `cannot read subnet file ${file}`, (err as Error).message, { cause: err });
  }
  if (record === null) {
    throw new CniError('ERR_CNI_TRY_AGAIN', `subnet file ${file} does not exist yet; is twilld running?`, 'try again later: the daemon writes it once it holds a subnet lease');
  }
  let env: ReturnType<typeof parseSubnetEnv>;
  try {
    env = parseSubnetEnv(record);
  } catch (err) {
    throw new CniError('ERR_CNI_SUBNET_FILE', `invalid subnet file ${file}: ${(err as Error).message}`, '', { cause: err });
  }
  const subnet = parsePrefix4(env.subnet);
  if (subnet.len > 30) {
    throw new CniError('ERR_CNI_SUBNET_FILE', `invalid subnet file ${file}: FLANNEL_SUBNET ${env.subnet} has no room for pods`, 'the host subnet must be /30 or larger');
  }
  return { subnet, gateway: firstHost(subnet), mtu: env.mtu };
}

export function describeSubnet(s: HostSubnet): string {
  return `${formatIp4(s.subnet.ip)}/${s.subnet.len} via ${formatIp4(s.gateway)}`;
}
