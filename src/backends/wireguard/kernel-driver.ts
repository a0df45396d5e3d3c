// The kernel WireGuard driver: a link of kind "wireguard" made over rtnetlink, its key, port
// and peers over generic netlink (messages: genetlink.ts), on a socket from native/ like every
// other netlink socket twill opens. Generic netlink answers inside sendmsg, as rtnetlink does,
// so each exchange is a send and blocking reads bounded by SO_RCVTIMEO.
// The family is resolved by name (CTRL_CMD_GETFAMILY "wireguard"): the kernel loads the module
// on that request if it can, so the same question is `auto`'s probe (ENOENT: no WireGuard).
// Tested here at the message level only: this kernel has no WireGuard to answer.
import { native, EAGAIN } from '../../netns/native';
import { decodeError, decodeMessages, MsgType, type RawMessage } from '../../netlink/frame';
import { ETIMEDOUT, NetlinkError } from '../../netlink/errors';
import type { Driver } from '../../dataplane/driver';
import type { WgDeviceSpec } from './backend';
import { deviceState, familyIdOf, familyRequest, getDeviceMessage, parseDeviceBody, setDeviceMessage, setDeviceObjects } from './genetlink';
import { deviceOfKind, wireguardDriverOn, type WgAccess, type WgSyncStats, type WireguardDriverOptions } from './wg-driver';

const NETLINK_GENERIC = 16;
const NLMSG_DONE = 3;
const RECV_BYTES = 256 * 1024;

export class GenlSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.allocUnsafe(RECV_BYTES);
  private constructor(private readonly fd: number) {}

  static open(): GenlSocket {
    return new GenlSocket(native().netlinkOpen(NETLINK_GENERIC, [], null, 4 * 1024 * 1024, 5000, false));
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
      if (n === -EAGAIN) throw new NetlinkError(ETIMEDOUT, 'wireguard', target, 'no answer from the kernel');
      for (const m of decodeMessages(Buffer.from(this.buf.subarray(0, n)))) {
        if (m.seq !== seq) continue;
        if (m.type === MsgType.ERROR) {
          const e = decodeError(m);
          if (e.errno !== 0) throw new NetlinkError(e.errno, 'wireguard', target, e.message);
          return out;
        }
        if (m.type === NLMSG_DONE) return out;
        out.push(m);
      }
    }
  }

  close(): void {
    require('node:fs').closeSync(this.fd);
  }
}

/** The generic netlink id of a family ("wireguard"); throws NetlinkError (ENOENT: the kernel has no such family). */
export function resolveFamily(sock: GenlSocket, name = 'wireguard'): number {
  const [answer] = sock.exchange(familyRequest(sock.nextSeq(), name), `family ${name}`);
  const id = answer ? familyIdOf(answer.data) : undefined;
  if (id === undefined) throw new NetlinkError(0, 'wireguard', `family ${name}`, 'no family id in the answer');
  return id;
}

/** Whether the kernel has WireGuard (loading its module if it may), and why not. */
export function kernelWireguardProbe(): { ok: boolean; reason: string } {
  let sock: GenlSocket | undefined;
  try {
    sock = GenlSocket.open();
    return { ok: true, reason: `generic netlink family wireguard is ${resolveFamily(sock)}` };
  } catch (err) {
    return { ok: false, reason: err instanceof NetlinkError ? err.errnoName : (err as Error).message };
  } finally {
    sock?.close();
  }
}

export function genlAccess(): WgAccess {
  let sock: GenlSocket | undefined;
  let family = 0;
  const ready = (): GenlSocket => {
    if (!sock) {
      sock = GenlSocket.open();
      family = resolveFamily(sock);
    }
    return sock;
  };
  return {
    label: 'wireguard device (kernel)',
    link(h, s) {
      let link = deviceOfKind(h, s.name, 'wireguard');
      if (!link) h.createLinkOfKind(s.name, 'wireguard', s.mtu);
      link ??= h.getLink(s.name);
      if (!link) throw new Error(`${s.name} vanished right after creation`);
      return link;
    },
    get: async (s) => {
      const so = ready();
      return deviceState(so.exchange(getDeviceMessage(family, so.nextSeq(), s.name), s.name).map((m) => parseDeviceBody(m.data)));
    },
    async set(s, diff) {
      const so = ready();
      for (const d of setDeviceObjects(s.name, diff)) so.exchange(setDeviceMessage(family, so.nextSeq(), d), s.name);
    },
  };
}

export function kernelWireguardDriver(opts: WireguardDriverOptions): Driver<WgDeviceSpec> & { stats(): WgSyncStats } {
  return wireguardDriverOn(genlAccess(), opts);
}
