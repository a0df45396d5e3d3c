// UDP sockets for probing: node:dgram over an fd from the native addon, so datagrams carry
// DF (IP_PMTUDISC_PROBE, see native/udp_df.c). Node does every send and receive; only the
// socket's creation is native.
import * as dgram from 'node:dgram';
import { native } from '../netns/native';
import { ProbeError } from './errors';

/** A bound UDP socket at ip:port (0: any) whose datagrams carry DF. */
export function openDfSocket(ip: number, port: number): Promise<dgram.Socket> {
  let fd: number;
  try {
    fd = native().udpOpen(ip >>> 0, port, true);
  } catch (err) {
    throw new ProbeError('ERR_PROBE_SOCKET', `cannot open a probe socket on port ${port}`, { cause: err });
  }
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
  return new Promise((resolve, reject) => {
    s.once('listening', () => resolve(s));
    s.once('error', (err) => reject(new ProbeError('ERR_PROBE_SOCKET', 'cannot adopt the probe socket', { cause: err })));
    s.bind({ fd });
  });
}
