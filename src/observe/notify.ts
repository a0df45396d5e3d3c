// systemd notification protocol (sd_notify(3)) over an injected sender.
//
// The real sender is native().sdNotify (src/netns/native.ts), which returns false when
// NOTIFY_SOCKET is unset, so every call here is harmless outside systemd. The watchdog pings
// at half of WATCHDOG_USEC as systemd recommends, and only when WATCHDOG_PID (if set) names
// this process: a child that inherited the environment must not keep its parent's watchdog fed.
// Timers are unref'd so the watchdog never keeps a shutting-down process alive.

export type NotifySender = (state: string) => boolean;

export interface Notifier {
  /** READY=1: startup finished (lease held, dataplane converged once). */
  ready(): boolean;
  /** STOPPING=1: shutdown started. */
  stopping(): boolean;
  /** STATUS=<text>, shown by `systemctl status`. Newlines are flattened (they separate fields). */
  status(text: string): boolean;
  /**
   * Starts WATCHDOG=1 pings if systemd asked for them. Returns the ping interval in ms, or null
   * when no watchdog is configured for this process. Idempotent.
   */
  startWatchdog(): number | null;
  stopWatchdog(): void;
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  pid?: number;
}

/** Interval in ms for WATCHDOG=1 pings, or null when the watchdog is not for this process. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | null {
  const usecText = env['WATCHDOG_USEC'];
  if (usecText === undefined || !/^\d+$/.test(usecText)) return null;
  const usec = Number(usecText);
  if (usec <= 0) return null;
  const pidText = env['WATCHDOG_PID'];
  if (pidText !== undefined && pidText !== '' && Number(pidText) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2 / 1000));
}

export function createNotifier(send: NotifySender, opts: NotifierOptions = {}): Notifier {
  const env = opts.env ?? process.env;
  const pid = opts.pid ?? process.pid;
  let timer: NodeJS.Timeout | undefined;

  // A notification is best effort: a throwing sender must not take the daemon (or the watchdog
  // timer callback, where an exception would be uncaught) down with it.
  const safeSend = (state: string): boolean => {
    try {
      return send(state);
    } catch {
      return false;
    }
  };

  const stopWatchdog = (): void => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };

  return {
    ready: () => safeSend('READY=1'),
    // Keeps the watchdog running: a slow, orderly shutdown is bounded by TimeoutStopSec and
    // should not be cut short by a watchdog kill.
    stopping: () => safeSend('STOPPING=1'),
    status: (text) => safeSend(`STATUS=${text.replace(/[\r\n]+/g, ' ')}`),
    startWatchdog: () => {
      const interval = watchdogIntervalMs(env, pid);
      if (interval === null) return null;
      if (!timer) {
        safeSend('WATCHDOG=1');
        timer = setInterval(() => safeSend('WATCHDOG=1'), interval);
        timer.unref();
      }
      return interval;
    },
    stopWatchdog,
  };
}
