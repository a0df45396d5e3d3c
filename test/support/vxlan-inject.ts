// Crafted VXLAN datagrams for the source-filter proofs: an Ethernet/IPv4/UDP frame with a
// chosen (forged) inner source, encapsulated as a VTEP would, sent from any namespace.
import type * as dgram from 'node:dgram';
import { encapsulate } from '../../src/userspace/vxlan-codec';
import { bindInNetns } from '../../src/lab/probe';

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((x) => parseInt(x, 16)));
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface InnerUdp {
  dstMac: string;
  srcMac: string;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

/** Ethernet + IPv4 (valid header checksum) + UDP (checksum 0: none, legal in IPv4). */
export function innerUdpFrame(f: InnerUdp): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + f.payload.length, 2);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip[8] = 64;
  ip[9] = 17;
  ipBytes(f.srcIp).copy(ip, 12);
  ipBytes(f.dstIp).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(f.srcPort, 0);
  udp.writeUInt16BE(f.dstPort, 2);
  udp.writeUInt16BE(8 + f.payload.length, 4);
  return Buffer.concat([macBytes(f.dstMac), macBytes(f.srcMac), Buffer.from([0x08, 0x00]), ip, udp, f.payload]);
}

/** Sends `count` VXLAN datagrams carrying `inner` from the namespace at `nsPath` (bound to `fromIp`). */
export async function sendVxlan(nsPath: string, fromIp: string, to: string, port: number, vni: number, inner: InnerUdp, count: number): Promise<void> {
  const s: dgram.Socket = await bindInNetns(nsPath, fromIp);
  try {
    const datagram = Buffer.from(encapsulate(vni, innerUdpFrame(inner)));
    for (let i = 0; i < count; i++) {
      await new Promise<void>((resolve, reject) => s.send(datagram, port, to, (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    s.close();
  }
}
