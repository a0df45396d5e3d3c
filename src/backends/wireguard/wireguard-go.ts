// The one adapter that runs a program: wireguard-go, the userspace WireGuard, for kernels
// without the module. Named exception to "nothing in src/ runs a tool": WireGuard in userspace
// *is* that process (a TUN device and its crypto); it is configured only through its UAPI
// socket, never through `wg`.
//
// - Started in the foreground (-f) but detached into its own session, with its output in
//   <stateDir>/<ifname>.wireguard-go.log: it outlives twilld (SIGKILL included) so traffic
//   never stops on a restart; the next twilld finds the device and its UAPI socket and adopts it.
// - Its PID is kept in <stateDir>/<ifname>.wireguard-go.pid. A recorded process that still
//   runs wireguard-go while its device is gone (being torn down) is stopped by that PID before
//   a new one starts; twill never stops any other process.
// - It runs in twilld's network namespace (a child inherits it) and creates its TUN there.
//   Its UAPI socket is /var/run/wireguard/<ifname>.sock on the shared filesystem: two
//   wireguard-go with one name on one machine collide (the second exits: "unix socket in use").
//   The lab therefore gives each host its own device name.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TwillError } from '../../base/twill-error';

export const WIREGUARD_GO = process.env['TWILL_WIREGUARD_GO'] ?? 'wireguard-go';

export class WireguardGoError extends TwillError<'ERR_WIREGUARD_GO'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_WIREGUARD_GO', message, options);
    this.name = 'WireguardGoError';
  }
}

const pidFile = (stateDir: string, ifname: string): string => path.join(stateDir, `${ifname}.wireguard-go.pid`);

/** A live wireguard-go (a zombie — killed, not yet reaped by us — does not count). */
function runningWireguardGo(pid: number): boolean {
  try {
    const m = /^\d+ \((.*)\) (\S)/.exec(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return m !== null && m[1] === 'wireguard-go' && m[2] !== 'Z';
  } catch {
    return false;
  }
}

/** The recorded wireguard-go of this device, if it still runs. */
export function recordedPid(stateDir: string, ifname: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(pidFile(stateDir, ifname), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && runningWireguardGo(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts wireguard-go for `ifname` (its device does not exist). Returns its PID; the device
 * appears a few milliseconds later (the caller's next pass finds it).
 */
export function startWireguardGo(stateDir: string, ifname: string): number {
  const stale = recordedPid(stateDir, ifname);
  // Gone before the new one starts (a lingering one still owning the UAPI socket would make the
  // new one exit, "unix socket in use"). SIGKILL: its device is gone, it has nothing to clean up,
  // and SIGTERM took over a second to end one in that state (measured); the new one replaces a
  // socket file nobody listens on.
  if (stale !== undefined) killAndWait(stale);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const log = fs.openSync(path.join(stateDir, `${ifname}.wireguard-go.log`), 'a', 0o600);
  try {
    const child = spawn(WIREGUARD_GO, ['-f', ifname], {
      detached: true,
      stdio: ['ignore', log, log],
      // The last: older wireguard-go refuse to start where the kernel has WireGuard unless told.
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', LOG_LEVEL: 'error', WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' },
    });
    child.on('error', () => undefined); // ENOENT is reported below, through the missing PID
    child.unref();
    if (child.pid === undefined) throw new WireguardGoError(`cannot start ${WIREGUARD_GO} (is the wireguard-go package installed?)`);
    fs.writeFileSync(pidFile(stateDir, ifname), `${child.pid}\n`, { mode: 0o644 });
    return child.pid;
  } finally {
    fs.closeSync(log);
  }
}

/** Blocks this thread for `ms` (the reconciler's passes are synchronous; used around a start only). */
const pause = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function killAndWait(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return; // gone
  }
  for (const until = Date.now() + 500; Date.now() < until && runningWireguardGo(pid); ) pause(5);
}

/** Stops the recorded wireguard-go of `ifname` (tests, `twillctl` teardown); by PID only. */
export function stopWireguardGo(stateDir: string, ifname: string): boolean {
  const pid = recordedPid(stateDir, ifname);
  if (pid === undefined) return false;
  process.kill(pid, 'SIGTERM');
  fs.rmSync(pidFile(stateDir, ifname), { force: true });
  return true;
}
