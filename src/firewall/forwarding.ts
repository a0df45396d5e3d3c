// IPv4 forwarding, switched on as twilld starts: without it the host drops every packet
// between a pod's veth and the VXLAN device or the underlay. Written through /proc/sys (the
// file of the network namespace we run in), never by running sysctl.
//
// Under systemd's ProtectKernelTunables=yes /proc/sys is read-only; the unit therefore lists
// this one file in ReadWritePaths=. A read-only file is reported, not fatal: an operator may
// manage forwarding elsewhere (it is then usually already on, and we only read it).
import * as fs from 'node:fs';
import { TwillError } from '../base/twill-error';

export const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

export class ForwardingError extends TwillError<'ERR_IP_FORWARD'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_IP_FORWARD', message, options);
    this.name = 'ForwardingError';
  }
}

/** Turns IPv4 forwarding on; returns whether it was off before. Throws ForwardingError. */
export function enableIpForwarding(file = IP_FORWARD): { wasOff: boolean } {
  let before: string;
  try {
    before = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ForwardingError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (before === '1') return { wasOff: false };
  try {
    fs.writeFileSync(file, '1\n');
  } catch (err) {
    throw new ForwardingError(`IPv4 forwarding is off and ${file} cannot be written (${(err as NodeJS.ErrnoException).code}); pods cannot reach other hosts until it is 1`, { cause: err });
  }
  return { wasOff: true };
}
