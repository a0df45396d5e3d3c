// The responder's decision for one datagram: answer (with what) or drop (why). Pure.
//
// Safe to expose on every host: it answers only well-formed requests (wire.ts), only to
// sources in the cluster network or among the peers' PublicIPs, never to port 0, never a
// reply (two responders cannot be made to ping-pong), at a bounded rate per source and in
// total (a flooding pod spends its own budget, not its host's peers'), and the answer is
// the request's own length (no amplification). Everything else is dropped and counted.
import { decodeProbe, encodeReply, KIND_REQUEST, type DropReason } from './wire';
import type { PerSourceLimiter, TokenBucket } from './token-bucket';

export type ResponderDrop = DropReason | 'source' | 'not-request' | 'rate';
export const RESPONDER_DROPS: readonly ResponderDrop[] = ['short', 'long', 'magic', 'version', 'kind', 'flags', 'padding', 'source', 'not-request', 'rate'];

export interface ResponderPolicy {
  /** Source allowed: in the cluster network or a peer's PublicIP. */
  allowed(srcIp: number): boolean;
  /** Our overlay address, written as the reply's sender. */
  self(): number;
}

export interface ResponderLimits {
  total: TokenBucket;
  perSource: PerSourceLimiter;
}

export function respond(msg: Uint8Array, src: { ip: number; port: number }, policy: ResponderPolicy, limits: ResponderLimits, now: number): { answer: Buffer } | { drop: ResponderDrop } {
  if (src.port === 0 || !policy.allowed(src.ip)) return { drop: 'source' };
  const d = decodeProbe(msg);
  if (!d.ok) return { drop: d.reason };
  if (d.probe.kind !== KIND_REQUEST) return { drop: 'not-request' };
  if (!limits.perSource.take(src.ip, now) || !limits.total.take(now)) return { drop: 'rate' };
  return { answer: encodeReply(msg, policy.self()) };
}
