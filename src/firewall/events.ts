// nf_tables change notifications (NETLINK_NETFILTER, group NFNLGRP_NFTABLES): how twilld
// learns within milliseconds that someone ran `nft flush ruleset`, reloaded a firewall or ran
// iptables-restore (iptables-nft), instead of finding out at the next periodic check.
//
// Why a netlink socket and not a long-lived `nft monitor` parsing its text: the events are
// only a trigger (the driver then lists the ruleset as JSON and compares), so nothing needs
// decoding but one attribute; a child process would be one more thing to supervise, restart
// and keep in step, and its text format is for people.
//
// Every committed transaction ends with one NFT_MSG_NEWGEN naming the process that made it
// (NFTA_GEN_PROC_PID). Ours (our nft runs) are skipped; any other one means "look". The PID is
// the kernel's global one: in a PID namespace ours would not match and we merely look once
// more than needed. An overflowed receive queue (ENOBUFS) also means "look".
import { EventEmitter } from 'node:events';
import type { RawMessage } from '../netlink/frame';
import { NetlinkGroupSocket } from '../netlink/group-socket';

const NETLINK_NETFILTER = 12;
const NFNLGRP_NFTABLES = 7;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWGEN = 15;
const NFTA_GEN_PROC_PID = 2;
const NFGENMSG_LEN = 4;
const EVENT_BUF = 4 * 1024 * 1024;

/** The PID a NEWGEN message names, or undefined for any other message. Pure. */
export function newgenPid(m: RawMessage): number | undefined {
  if (m.type !== ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN)) return undefined;
  let off = NFGENMSG_LEN;
  while (off + 4 <= m.data.length) {
    const len = m.data.readUInt16LE(off);
    const type = m.data.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > m.data.length) break;
    if (type === NFTA_GEN_PROC_PID && len >= 8) return m.data.readUInt32BE(off + 4);
    off += (len + 3) & ~3;
  }
  return 0;
}

export interface NftEventsEvents {
  /** A transaction by process `pid` (0: unknown) was committed; or the queue overflowed. */
  change: [pid: number];
  error: [Error];
}

export class NftEventSocket extends EventEmitter<NftEventsEvents> {
  private readonly sock: NetlinkGroupSocket;

  constructor(netns?: string) {
    super();
    this.sock = new NetlinkGroupSocket(NETLINK_NETFILTER, [NFNLGRP_NFTABLES], netns, EVENT_BUF, {
      message: (m) => {
        const pid = newgenPid(m);
        if (pid !== undefined) this.emit('change', pid);
      },
      overflow: () => this.emit('change', 0),
      error: (err) => this.emit('error', err),
    });
  }

  unref(): void {
    this.sock.unref();
  }

  close(): void {
    this.sock.close();
  }
}
