// Typed view of the userspace-datapath functions in native/userspace.c (same addon as
// src/netns/native.ts; that file stays the only one that knows where the binary lives).
import { native } from '../netns/native';
import { TwillError } from '../base/twill-error';

export type ForwarderHandle = { readonly __brand: 'ForwarderHandle' };

/** Counters the native loop keeps; every value is cumulative since the handle was created. */
export interface NativeStats {
  txFrames: number;
  txBytes: number;
  tapReads: number;
  udpSendCalls: number;
  txGsoFrames: number;
  tapReadErrors: number;
  rxFrames: number;
  rxBytes: number;
  udpRecvCalls: number;
  tapWrites: number;
  rxMergedFrames: number;
  udpRecvErrors: number;
  drops: { tx: Record<TxDropReason, number>; rx: Record<RxDropReason, number> };
  /** false once the kernel refused UDP GSO (then one datagram per message). */
  udpGso: boolean;
  running: boolean;
}

export const TX_DROP_REASONS = ['unknown-mac', 'multicast', 'runt-frame', 'bad-offload', 'send-error'] as const;
export const RX_DROP_REASONS = ['short', 'bad-flags', 'wrong-vni', 'runt-frame', 'unknown-peer', 'own-mac', 'truncated', 'tap-write-error'] as const;
export type TxDropReason = (typeof TX_DROP_REASONS)[number];
export type RxDropReason = (typeof RX_DROP_REASONS)[number];

export interface UserspaceAddon {
  usOpenTap(name: string, vnetHdr: boolean, persist: boolean): number;
  usTapName(fd: number): string | null;
  usOpenUdp(ip: string, port: number, bufBytes: number): number;
  usCreate(vni: number, port: number, ownMac: Buffer, mtu: number): ForwarderHandle;
  usSetFds(h: ForwarderHandle, tapFd: number, vnetHdr: boolean, udpFd: number): void;
  usSetConfig(h: ForwarderHandle, vni: number, port: number, ownMac: Buffer, mtu: number): void;
  usSetTable(h: ForwarderHandle, entries: Buffer): void;
  usStats(h: ForwarderHandle): NativeStats;
  usClose(h: ForwarderHandle): void;
  usClassify(datagram: Uint8Array, vni: number): number;
}

export class UserspaceNativeMissing extends TwillError<'ERR_USERSPACE_NATIVE_MISSING'> {
  constructor() {
    super('ERR_USERSPACE_NATIVE_MISSING', 'the native addon has no userspace datapath (native/userspace.c not built in): rebuild with node-gyp');
    this.name = 'UserspaceNativeMissing';
  }
}

export function userspaceNative(): UserspaceAddon {
  const a = native() as unknown as Partial<UserspaceAddon>;
  if (typeof a.usCreate !== 'function') throw new UserspaceNativeMissing();
  return a as UserspaceAddon;
}

export function hasUserspaceNative(): boolean {
  try {
    userspaceNative();
    return true;
  } catch {
    return false;
  }
}
