// Loader for the N-API addon in native/ (built by `npm ci` through binding.gyp).
// Only this file knows where the binary lives.
import * as path from 'node:path';

export interface NativeAddon {
  netlinkOpen(protocol: number, groups: number[], netnsPath: string | null, bufBytes: number, recvTimeoutMs: number, nonblock: boolean): number;
  netlinkSend(fd: number, buf: Buffer): number;
  /** Bytes received, or a negative errno (-EAGAIN) when nothing is queued / the timeout passed. */
  netlinkRecv(fd: number, buf: Buffer): number;
  watchReadable(fd: number, cb: (status: number) => void): unknown;
  stopWatch(handle: unknown): void;
  unrefWatch(handle: unknown): void;
  sdNotify(state: string): boolean;
  netnsEnter(path: string): number;
  netnsReturn(origFd: number): void;
  /** What iproute2 does before mounting there: `dir` a shared (recursive) mount point. */
  netnsDirShared(dir: string): void;
  netnsCreate(path: string): void;
  /** Unmounts and unlinks, also a file shadowed by a later bind mount; false: was not there. */
  netnsDelete(path: string): boolean;
  /** uid and pid (0: outside our PID namespace) of the peer of a unix socket (SO_PEERCRED). */
  peerCred(fd: number): { uid: number; pid: number };
  /** 0 same view, 1 entered (pair with fsViewReturn), -1 cannot: see native/fs_view.c. */
  fsViewEnter(pid: number): number;
  fsViewReturn(): void;
  /** A bound, nonblocking UDP socket; with pmtuProbe its datagrams carry DF (IP_PMTUDISC_PROBE). See native/udp_df.c. */
  udpOpen(ipv4: number, port: number, pmtuProbe: boolean): number;
}

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!cached) {
    // dist/src/netns/native.js -> <root>/build/Release; src/netns/native.ts -> same depth.
    const root = path.resolve(__dirname, '..', '..', '..');
    const candidates = [path.join(root, 'build', 'Release', 'twill_native.node'), path.resolve(__dirname, '..', '..', 'build', 'Release', 'twill_native.node')];
    let lastErr: unknown;
    for (const c of candidates) {
      try {
        cached = require(c) as NativeAddon;
        break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (!cached) throw lastErr;
  }
  return cached;
}

export const EAGAIN = 11;
