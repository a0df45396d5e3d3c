// Peer set members added and deleted over nf_tables netlink, without starting `nft`.
//
// Why not nft here too: a member change happens on every peer join and leave, on the path
// between the etcd event and the peer's routes, and starting nft from a daemon of 100+ MB
// (fork + exec + libnftables' set-up) costs 5-15 ms on a loaded 2-CPU host — it doubled the
// join latency measured by bench:overlay. A member is just a 4-byte key, so the message is
// small to encode by hand: one nfnetlink batch (BATCH_BEGIN, NEWSETELEM and/or DELSETELEM,
// BATCH_END), committed by the kernel as one transaction, acknowledged per message. The table
// itself (rules, NAT, fib, counters) still goes through nft (nft.ts): that needs a compiler.
//
// Edge cases: deleting an absent member fails the whole batch (ENOENT), like nft; adding a
// present one is fine without NLM_F_EXCL. The nfgenmsg res_id of BATCH_BEGIN is the subsystem
// (NFNL_SUBSYS_NFTABLES) in network byte order. The commit's NEWGEN event names this process,
// which the driver knows to be itself.
import * as fs from 'node:fs';
import { isIPv4 } from 'node:net';
import { native, EAGAIN } from '../netns/native';
import { attr, nested, NLA_F_NESTED, strAttr } from '../netlink/attrs';
import { decodeError, decodeMessages, encodeMessage, Flags, MsgType } from '../netlink/frame';
import { NftError } from './nft';

const NETLINK_NETFILTER = 12;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NFPROTO_IPV4 = 2;
const AF_UNSPEC = 0;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_DATA_VALUE = 1;
const RECV_TIMEOUT_MS = 5000;

function nfgen(family: number, resId: number): Buffer {
  const b = Buffer.alloc(4);
  b[0] = family;
  b[1] = 0; // NFNETLINK_V0
  b.writeUInt16BE(resId, 2);
  return b;
}

function ipv4Key(ip: string): Buffer {
  if (!isIPv4(ip)) throw new NftError('failed', `set member "${ip}" is not IPv4`);
  return Buffer.from(ip.split('.').map(Number));
}

export interface SetChange {
  op: 'add' | 'delete';
  addrs: readonly string[];
}

/** One batch applying `changes` to set `set` of `table` (family ip); messages numbered from `seq`. Pure. */
export function encodeSetBatch(seq: number, table: string, set: string, changes: readonly SetChange[]): { buf: Buffer; acked: number[] } {
  const msgs = [encodeMessage(NFNL_MSG_BATCH_BEGIN, Flags.REQUEST, seq, nfgen(AF_UNSPEC, NFNL_SUBSYS_NFTABLES))];
  const acked: number[] = [];
  for (const c of changes) {
    if (c.addrs.length === 0) continue;
    // nf_tables wants NLA_F_NESTED on every attribute that holds attributes.
    const elems = c.addrs.map((ip) => nested(NFTA_LIST_ELEM | NLA_F_NESTED, [nested(NFTA_SET_ELEM_KEY | NLA_F_NESTED, [attr(NFTA_DATA_VALUE, ipv4Key(ip))])]));
    const body = Buffer.concat([nfgen(NFPROTO_IPV4, 0), strAttr(NFTA_SET_ELEM_LIST_TABLE, table), strAttr(NFTA_SET_ELEM_LIST_SET, set), nested(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, elems)]);
    const type = (NFNL_SUBSYS_NFTABLES << 8) | (c.op === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
    const s = seq + msgs.length;
    msgs.push(encodeMessage(type, Flags.REQUEST | Flags.ACK | (c.op === 'add' ? Flags.CREATE : 0), s, body));
    acked.push(s);
  }
  msgs.push(encodeMessage(NFNL_MSG_BATCH_END, Flags.REQUEST, seq + msgs.length, nfgen(AF_UNSPEC, NFNL_SUBSYS_NFTABLES)));
  return { buf: Buffer.concat(msgs), acked };
}

export class SetElementsSocket {
  private seq = Math.floor(Math.random() * 0x3fffffff);
  private readonly recvBuf = Buffer.allocUnsafe(64 * 1024);

  private constructor(private readonly fd: number) {}

  static open(netns?: string): SetElementsSocket {
    try {
      return new SetElementsSocket(native().netlinkOpen(NETLINK_NETFILTER, [], netns ?? null, 1024 * 1024, RECV_TIMEOUT_MS, false));
    } catch (err) {
      throw new NftError('failed', `cannot open an nf_tables netlink socket: ${(err as Error).message}`, '', { cause: err });
    }
  }

  /** Applies the changes as one transaction; throws NftError naming the errno if refused. */
  apply(table: string, set: string, changes: readonly SetChange[]): void {
    const first = this.seq;
    const { buf, acked } = encodeSetBatch(first, table, set, changes);
    const last = first + acked.length + 1;
    this.seq = (last + 1) % 0x3fffffff;
    if (acked.length === 0) return;
    native().netlinkSend(this.fd, buf);
    const pending = new Set(acked);
    const errors: string[] = [];
    while (pending.size > 0) {
      const n = native().netlinkRecv(this.fd, this.recvBuf);
      if (n === -EAGAIN) throw new NftError('timeout', `no answer from nf_tables within ${RECV_TIMEOUT_MS} ms`);
      for (const m of decodeMessages(this.recvBuf.subarray(0, n))) {
        // Answers to an earlier batch (left unread after its first error) are skipped.
        if (m.type !== MsgType.ERROR || m.seq < first || m.seq > last) continue;
        pending.delete(m.seq);
        const e = decodeError(m);
        if (e.errno === 0) continue;
        errors.push(`errno ${e.errno}${e.message ? ` (${e.message})` : ''}`);
        pending.clear(); // the batch is aborted: do not wait for the other answers
      }
    }
    if (errors.length > 0) throw new NftError('failed', `nf_tables refused the set change: ${errors.join('; ')}`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
