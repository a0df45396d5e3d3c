// One peer's health, judged from probe rounds. No I/O: applyRound updates the health it is given.
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

/** Every field present from the start: a round only writes fields, never adds one (one shape for all peers). */
export function newPeerHealth(now: number): PeerHealth {
  return { status: 'unknown', reachable: null, mtuOk: null, rttMs: null, lastSuccess: null, since: now, missedRounds: 0, missedFull: 0 };
}

function statusOf(h: Pick<PeerHealth, 'reachable' | 'mtuOk'>): PeerStatus {
  if (h.reachable === false) return 'unreachable';
  if (h.reachable === true && h.mtuOk === false) return 'mtu';
  if (h.reachable === true && h.mtuOk === true) return 'ok';
  return 'unknown';
}

/**
 * One round applied to `h`, in place; returns the change of status, if any. In place, not a
 * copy per round: a round is up to 200 s at 10,000 peers, so every copy outlived the young
 * generation and was promoted, then garbage the next round (10,000 per round, issue 13).
 */
export function applyRound(h: PeerHealth, r: RoundResult, failures: number): Transition | null {
  const answered = r.smallRttMs !== null || r.fullRttMs !== null;
  if (answered) {
    h.missedRounds = 0;
    h.reachable = true;
    h.lastSuccess = r.at;
    if (r.smallRttMs !== null) h.rttMs = r.smallRttMs;
  } else {
    h.missedRounds++;
    if (h.missedRounds >= failures) h.reachable = false;
  }
  if (r.fullRttMs !== null) {
    h.missedFull = 0;
    h.mtuOk = true;
  } else if (answered) {
    h.missedFull++;
    if (h.missedFull >= failures) h.mtuOk = false;
  }
  const status = statusOf(h);
  if (status === h.status) return null;
  const from = h.status;
  h.status = status;
  h.since = r.at;
  return { from, to: status };
}
