// One peer's health, judged from probe rounds. Pure.
//
// A round is a small probe (reachability, round trip) and a full-size probe (pod MTU, DF set)
// sent together. The peer is
//   - unreachable: after `failures` consecutive rounds in which neither probe was answered;
//   - mtu:         reachable, but the full-size probe went unanswered `failures` rounds in a
//                  row — the overlay MTU blackhole (small packets pass, large ones vanish);
//   - ok:          reachable and the last full-size probe answered;
//   - unknown:     not judged yet (new peer, or fewer than `failures` rounds without answer).
// One answered round is enough to recover. Only changes of `status` are returned as a
// transition, so the caller logs each change once, not every probe.

export type PeerStatus = 'unknown' | 'ok' | 'mtu' | 'unreachable';
export const PEER_STATUSES: readonly PeerStatus[] = ['unknown', 'ok', 'mtu', 'unreachable'];

export interface PeerHealth {
  status: PeerStatus;
  /** null until judged. */
  reachable: boolean | null;
  mtuOk: boolean | null;
  /** Round trip of the last answered small probe, ms. */
  rttMs: number | null;
  /** Epoch ms of the last answered probe. */
  lastSuccess: number | null;
  /** Epoch ms since when `status` holds. */
  since: number;
  missedRounds: number;
  missedFull: number;
}

export interface RoundResult {
  /** Round trip in ms, or null when unanswered. */
  smallRttMs: number | null;
  fullRttMs: number | null;
  at: number;
}

export interface Transition {
  from: PeerStatus;
  to: PeerStatus;
}

export function newPeerHealth(now: number): PeerHealth {
  return { status: 'unknown', reachable: null, mtuOk: null, rttMs: null, lastSuccess: null, since: now, missedRounds: 0, missedFull: 0 };
}

function statusOf(h: Pick<PeerHealth, 'reachable' | 'mtuOk'>): PeerStatus {
  if (h.reachable === false) return 'unreachable';
  if (h.reachable === true && h.mtuOk === false) return 'mtu';
  if (h.reachable === true && h.mtuOk === true) return 'ok';
  return 'unknown';
}

export function applyRound(h: PeerHealth, r: RoundResult, failures: number): { next: PeerHealth; transition: Transition | null } {
  // Every field written out, in newPeerHealth's order: a spread copy whose null fields later
  // become numbers changes shape and moves its fields out of the object (10,000 peers: ~0.8 MB).
  const n: PeerHealth = { status: h.status, reachable: h.reachable, mtuOk: h.mtuOk, rttMs: h.rttMs, lastSuccess: h.lastSuccess, since: h.since, missedRounds: h.missedRounds, missedFull: h.missedFull };
  const answered = r.smallRttMs !== null || r.fullRttMs !== null;
  if (answered) {
    n.missedRounds = 0;
    n.reachable = true;
    n.lastSuccess = r.at;
    if (r.smallRttMs !== null) n.rttMs = r.smallRttMs;
  } else {
    n.missedRounds++;
    if (n.missedRounds >= failures) n.reachable = false;
  }
  if (r.fullRttMs !== null) {
    n.missedFull = 0;
    n.mtuOk = true;
  } else if (answered) {
    n.missedFull++;
    if (n.missedFull >= failures) n.mtuOk = false;
  }
  const status = statusOf(n);
  if (status === h.status) return { next: n, transition: null };
  n.status = status;
  n.since = r.at;
  return { next: n, transition: { from: h.status, to: status } };
}
