// Invoking a CNI plugin the way a container runtime does (CNI spec, "Execution protocol"):
// the executable itself, in the host's network namespace, with only the CNI_* variables and a
// PATH in its environment, the network configuration on stdin, the result (or an error
// object) on stdout. Nothing from this process's environment leaks in, so a plugin that
// silently depends on one (NODE_OPTIONS, a HOME, a proxy) fails here as it would under a runtime.
import { spawn } from 'node:child_process';
import { inNetns } from '../netns/netns';
import { LabError } from './errors';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

export interface CniInvocation {
  plugin: string;
  /** Namespace the plugin runs in (the "host"). */
  hostNsPath: string;
  command: CniCommand;
  containerId: string;
  netnsPath: string;
  ifname: string;
  cniPath: string;
  config: Record<string, unknown>;
  timeoutMs?: number;
}

export interface CniOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a runtime gives the plugin. Pure. */
export function cniEnv(inv: CniInvocation): NodeJS.ProcessEnv {
  return {
    CNI_COMMAND: inv.command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netnsPath,
    CNI_IFNAME: inv.ifname,
    CNI_PATH: inv.cniPath,
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  };
}

export function runCni(inv: CniInvocation): Promise<CniOutcome> {
  const timeoutMs = inv.timeoutMs ?? 30_000;
  // Forked while this thread is in the host namespace: the plugin runs there.
  const child = inNetns(inv.hostNsPath, () => spawn(inv.plugin, [], { env: cniEnv(inv), stdio: ['pipe', 'pipe', 'pipe'] }));
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new LabError('ERR_LAB_CNI', `cannot run CNI plugin ${inv.plugin}`, { cause: err }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // a plugin may exit without reading stdin
    child.stdin.end(JSON.stringify(inv.config));
  });
}

/** The first IPv4 address ("10.244.3.2/24") of an ADD result; throws ERR_LAB_CNI otherwise. */
export function addResultAddress(out: CniOutcome, what: string): string {
  if (out.exitCode !== 0) throw new LabError('ERR_LAB_CNI', `CNI ADD for ${what} failed (exit ${out.exitCode}): ${describeCniError(out)}`);
  let result: { ips?: Array<{ address?: unknown }> };
  try {
    result = JSON.parse(out.stdout) as typeof result;
  } catch (err) {
    throw new LabError('ERR_LAB_CNI', `CNI ADD for ${what} printed no JSON result: ${out.stdout.slice(0, 200)}`, { cause: err });
  }
  const addr = result.ips?.find((i) => typeof i.address === 'string' && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(i.address))?.address;
  if (typeof addr !== 'string') throw new LabError('ERR_LAB_CNI', `CNI ADD for ${what} returned no IPv4 address: ${out.stdout.slice(0, 200)}`);
  return addr;
}

export function describeCniError(out: CniOutcome): string {
  try {
    const e = JSON.parse(out.stdout) as { code?: number; msg?: string; details?: string };
    if (e.msg) return `code ${e.code}: ${e.msg}${e.details ? ` (${e.details})` : ''}`;
  } catch {
    /* not JSON */
  }
  return (out.stdout + out.stderr).trim().slice(0, 400) || 'no output';
}
