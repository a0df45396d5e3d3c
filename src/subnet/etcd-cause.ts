// What an etcd3 client error actually says, in one line: the endpoint and the cause.
//
// Why: the client's errors bury the cause. A refused connection is "14 UNAVAILABLE: No
// connection established. Last error: Error: connect ECONNREFUSED 172.30.0.1:2399. Resolution
// note: ", and after three failures the client's circuit breaker answers every call for 5 s with
// "Execution prevented because the circuit breaker is open", naming nothing — the daemon logged
// that first and the real cause only 6 s later (issue 16). The breaker's answer is replaced by the
// last real cause seen (CauseMemory), so every line names the endpoint and why.
// Pure: strings in, strings out; the memory is plain data.

export interface EtcdCause {
  /** The client's circuit breaker refused the call: `text` is then not the cause. */
  breaker: boolean;
  /** The cause in one line, e.g. "connect ECONNREFUSED 172.30.0.1:2399". */
  text: string;
}

const LAST_ERROR = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/s;

export function etcdCauseOf(err: unknown): EtcdCause {
  if (typeof err === 'object' && err !== null && (err as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true) {
    return { breaker: true, text: 'the etcd client paused calls after repeated failures' };
  }
  const msg = err instanceof Error ? err.message : String(err);
  const last = LAST_ERROR.exec(msg);
  if (last && last[1]) return { breaker: false, text: last[1].trim() };
  // "14 UNAVAILABLE: read ECONNRESET" → "read ECONNRESET"; keep other messages whole.
  const grpc = /^\d+ [A-Z_]+: (.*)$/s.exec(msg);
  return { breaker: false, text: (grpc ? grpc[1]! : msg).split('\n')[0]!.trim() };
}

/** Remembers the last real cause, to stand in for the circuit breaker's answer. */
export class CauseMemory {
  private last: { text: string; at: number } | undefined;

  /** The cause to show for `err`: its own, or the last real one when the breaker answered. */
  describe(err: unknown, now = Date.now()): string {
    const c = etcdCauseOf(err);
    if (!c.breaker) {
      this.last = { text: c.text, at: now };
      return c.text;
    }
    // The same words as the real failure: a log that dedupes by text does not alternate.
    if (this.last && now - this.last.at < 60_000) return this.last.text;
    return `unreachable (${c.text})`;
  }
}
