// Runs a test body in a private mount namespace whose /run is a fresh tmpfs with a plain
// /run/netns directory: "a machine where /run/netns is not a mount point", without changing the
// real machine's /run/netns (other tests run beside us). `unshare --propagation private`
// makes every mount in the copy private first, so nothing done inside propagates back; the
// namespace files and mounts made inside vanish with the namespace.
//
// The body is a compiled script (dist/test/support/*.js) that prints one JSON line per
// result; its first line is the inode of its mount namespace. Every process left in that
// mount namespace when the script ends (a lab's daemons, etcd, servers) was started by it:
// they are killed by PID, so nothing outlives the test even when the body failed.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface PrivateRun {
  code: number | null;
  /** The JSON lines the body printed, after the first (its namespace). */
  results: Array<Record<string, unknown>>;
  stderr: string;
  /** PIDs still in the namespace after the body exited (then killed). */
  leftover: number[];
}

export const MNT_NS_LINE = 'mntns';

/** For the body: prints its mount namespace first. */
export function announceNamespace(): void {
  process.stdout.write(`${JSON.stringify({ [MNT_NS_LINE]: fs.statSync('/proc/self/ns/mnt').ino })}\n`);
}

function pidsInMountNs(ino: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.statSync(`/proc/${e}/ns/mnt`).ino === ino) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

export function runPrivate(script: string, args: string[], timeoutMs = 300_000): Promise<PrivateRun> {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  const body = `mount -t tmpfs -o mode=755 tmpfs /run && mkdir /run/netns && exec "$0" "$@"`;
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', body, process.execPath, path.resolve(script), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', async (code) => {
      clearTimeout(timer);
      const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const ino = lines[0]?.[MNT_NS_LINE];
      const leftover = typeof ino === 'number' ? pidsInMountNs(ino) : [];
      for (const pid of leftover) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      resolve({ code, results: lines.slice(1), stderr, leftover });
    });
  });
}
