// Processes the lab starts: recorded by PID, stopped by PID (never by name), and only when
// /proc says the PID still runs the program we started (PIDs get reused).
import * as fs from 'node:fs';

export interface SpawnedProc {
  pid: number;
  /** A substring of /proc/PID/cmdline that identifies our process. */
  marker: string;
}

export function isRunning(p: SpawnedProc): boolean {
  try {
    const cmdline = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
    const stat = fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    // A zombie (state Z) has exited; only its parent has not collected it yet.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    // Inside execve (a wrapper script exec'ing node) the new image's arguments are not set up
    // yet and cmdline reads empty for a moment: still our process, not an exited one.
    return cmdline === '' || cmdline.includes(p.marker);
  } catch {
    return false;
  }
}

export async function stopProc(p: SpawnedProc, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<boolean> {
  if (!isRunning(p)) return false;
  try {
    process.kill(p.pid, signal);
  } catch {
    return false;
  }
  const deadline = Date.now() + timeoutMs;
  while (isRunning(p)) {
    if (Date.now() > deadline) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await sleep(100);
      break;
    }
    await sleep(20);
  }
  return true;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
