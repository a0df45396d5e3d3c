// Teardown that never stops at the first error: every step runs, whatever failed before it;
// what could not be removed is collected with the command that removes it by hand, and
// reported once at the end (LabError ERR_LAB_TEARDOWN, one problem line each). Used by
// `twill-lab down` (Lab.down) and by the tests' after-hooks.
import { LabError } from './errors';
import { isRunning, stopProc, type SpawnedProc } from './procs';

export interface TeardownProblem {
  what: string;
  error: string;
  /** A shell command that removes what is left. */
  fix: string;
}

export class Teardown {
  readonly problems: TeardownProblem[] = [];

  /** Runs `fn`; a throw is recorded, never propagated. */
  async step(what: string, fix: string, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      const e = err as Error & { code?: unknown; problems?: unknown };
      const code = typeof e?.code === 'string' && !String(e.message).includes(e.code) ? ` (${e.code})` : '';
      // A nested teardown's own list (a lab's down inside a test's after-hook) is kept whole.
      const nested = Array.isArray(e?.problems) && e.problems.length > 0 ? `: ${e.problems.join('; ')}` : '';
      this.problems.push({ what, error: `${e?.message ?? String(err)}${code}${nested}`, fix });
    }
  }

  /** Stops a recorded process (by PID, SIGTERM then SIGKILL); one that survives is a problem. */
  stop(what: string, p: SpawnedProc | undefined): Promise<void> {
    if (!p) return Promise.resolve();
    return this.step(`${what} (pid ${p.pid})`, `kill -9 ${p.pid}`, async () => {
      await stopProc(p);
      if (isRunning(p)) throw new Error('still running after SIGKILL');
    });
  }

  /** Throws the collected problems, if any. */
  finish(subject: string): void {
    if (this.problems.length === 0) return;
    throw new LabError('ERR_LAB_TEARDOWN', `${subject}: ${this.problems.length} thing(s) could not be removed; everything else was`, {
      problems: this.problems.map((p) => `${p.what}: ${p.error}; to remove it: ${p.fix}`),
    });
  }
}
