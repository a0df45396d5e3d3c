// tcpdump as an independent oracle inside a namespace: start a capture to a pcap file, stop it
// by its PID, and read what it saw (raw bytes for a marker, tcpdump's own filter for counts).
// --immediate-mode: without it packets wait in the kernel's ring for up to a second and those
// of the last moments before SIGINT never reach the file.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

export interface Capture {
  file: string;
  proc: ChildProcess;
}

export async function startCapture(ns: string, iface: string, file: string, filter: string[]): Promise<Capture> {
  const proc = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', iface, '--immediate-mode', '-U', '-n', '-s', '0', '-w', file, ...filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 5000);
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return { file, proc };
}

export async function stopCapture(c: Capture): Promise<void> {
  if (c.proc.exitCode !== null) return;
  const done = new Promise((r) => c.proc.once('exit', r));
  c.proc.kill('SIGINT');
  await done;
}

/** Packets in the capture matching a tcpdump filter. */
export function countPackets(file: string, filter: string[]): number {
  const r = spawnSync('tcpdump', ['-r', file, '-n', ...filter], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

export function captureHolds(file: string, marker: Buffer): boolean {
  return fs.readFileSync(file).includes(marker);
}
