// A generic netlink socket from native/ (like every netlink socket twill opens), driven
// synchronously: generic netlink answers inside sendmsg, as rtnetlink does, so an exchange is a
// send and blocking reads bounded by SO_RCVTIMEO. Errors are NetlinkError with the kernel's
// errno, `op` naming the family's user (e.g. "wireguard").
import * as fs from 'node:fs';
import { native, EAGAIN } from '../netns/native';
import { ETIMEDOUT, NetlinkError } from './errors';
import { decodeError, decodeMessages, MsgType, type RawMessage } from './frame';
import { familyIdOf, familyRequest } from './genetlink';

const NETLINK_GENERIC = 16;
const RECV_BYTES = 256 * 1024;
const SNDRCV_BUF = 4 * 1024 * 1024;
const RECV_TIMEOUT_MS = 5000;

export class GenlSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.allocUnsafe(RECV_BYTES);
  private constructor(private readonly fd: number, readonly op: string) {}

  /** `op` names who uses the socket in errors ("wireguard"). */
  static open(op: string): GenlSocket {
    return new GenlSocket(native().netlinkOpen(NETLINK_GENERIC, [], null, SNDRCV_BUF, RECV_TIMEOUT_MS, false), op);
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /** Sends one request; returns its answers up to the ACK (or NLMSG_DONE of a dump). Throws the kernel's error. */
  exchange(msg: Buffer, target: string): RawMessage[] {
    const seq = msg.readUInt32LE(8);
    native().netlinkSend(this.fd, msg);
    const out: RawMessage[] = [];
    for (;;) {
      const n = native().netlinkRecv(this.fd, this.buf);
      if (n === -EAGAIN) throw new NetlinkError(ETIMEDOUT, this.op, target, 'no answer from the kernel');
      for (const m of decodeMessages(Buffer.from(this.buf.subarray(0, n)))) {
        if (m.seq !== seq) continue;
        if (m.type === MsgType.ERROR) {
          const e = decodeError(m);
          if (e.errno !== 0) throw new NetlinkError(e.errno, this.op, target, e.message);
          return out;
        }
        if (m.type === MsgType.DONE) return out;
        out.push(m);
      }
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** The generic netlink id of a family; throws NetlinkError (ENOENT: the kernel has no such family). */
export function resolveFamily(sock: GenlSocket, name: string): number {
  const [answer] = sock.exchange(familyRequest(sock.nextSeq(), name), `family ${name}`);
  const id = answer ? familyIdOf(answer.data) : undefined;
  if (id === undefined) throw new NetlinkError(0, sock.op, `family ${name}`, 'no family id in the answer');
  return id;
}
