// Running the programs under test as child processes.
import { spawn } from 'node:child_process';

/** This process's environment for a child: without the machine's NODE_EXTRA_CA_CERTS (slow starts). */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const e = { ...process.env, ...extra };
  delete e['NODE_EXTRA_CA_CERTS'];
  return e;
}

/**
 * Runs a program with a stdin that stays open, as a terminal's would (killed after `timeoutMs`):
 * for programs that must not wait for stdin.
 */
export async function runWithOpenStdin(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  child.stdin.destroy();
  return { code, stdout, stderr };
}
