// Pods for lab e2e tests, wired exactly as a runtime wires them: an empty namespace, then the
// `twill` CNI plugin executed inside the host's namespace with CNI_* variables and the network
// config on stdin. Pod namespaces are recorded in the lab state, so lab.down() removes them.
// (A lab-level `addPod` may replace this; until then it lives here, not in src/lab.)
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { createNetns, inNetns } from '../../src/netns/netns';
import type { Lab, LabHost, LabPod } from '../../src/lab/lab';
import { ipJson } from './netns';

export const CNI_BIN = process.env['TWILL_CNI_BIN'] ?? path.resolve(__dirname, '../../src/cmd/twill.js');

export interface CniCall {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json: unknown;
  ms: number;
}

/**
 * Runs the plugin once inside `hostNs` (forked while this thread is in the namespace, as a
 * runtime in that namespace would exec it). `env` is the complete CNI environment: only PATH
 * is added, as runtimes do.
 */
export function cniInvoke(hostNs: string, env: Record<string, string>, stdin: string | Buffer, timeoutMs = 30_000, plugin?: string): Promise<CniCall> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // `plugin`: an executable (an installed opt/cni/bin/twill); default: node on CNI_BIN.
    const [cmd, args] = plugin ? [plugin, []] : [process.execPath, [CNI_BIN]];
    const child = inNetns(`/run/netns/${hostNs}`, () =>
      spawn(cmd, args, {
        env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined); // the plugin may exit before reading everything
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let json: unknown;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, signal, stdout, stderr, json, ms: performance.now() - started });
    });
    child.stdin.end(stdin);
  });
}

export const POD_NETWORK = 'twillnet';

export function podConf(lab: Lab, host: LabHost, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: POD_NETWORK,
    type: 'twill',
    subnetFile: lab.subnetFile(host),
    dataDir: path.join(host.dir, 'cni'),
    ...extra,
  };
}

export function podDataDir(host: LabHost): string {
  return path.join(host.dir, 'cni', POD_NETWORK);
}

/** A pod namespace as a runtime creates it (empty), recorded in the lab for down(). */
export function newPodNs(lab: Lab, host: LabHost, name: string): LabPod {
  const ns = `twl-${lab.state.name}-${name}`.slice(0, 60);
  createNetns(ns);
  const pod: LabPod = { name, host: host.name, ns, containerId: `c${lab.state.name}${name}`.replace(/[^a-zA-Z0-9_.-]/g, ''), ifname: 'eth0' };
  lab.state.pods.push(pod);
  lab.save();
  return pod;
}

/** Creates a pod on `host` through the CNI plugin; returns it with its address. */
export async function addPod(lab: Lab, host: LabHost, name: string): Promise<LabPod & { ip: string }> {
  const pod = newPodNs(lab, host, name);
  const r = await cniInvoke(host.ns, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.containerId, CNI_IFNAME: pod.ifname, CNI_NETNS: `/run/netns/${pod.ns}`, CNI_PATH: '/usr/lib/cni' }, JSON.stringify(podConf(lab, host)));
  if (r.code !== 0) throw new Error(`CNI ADD for ${name} on ${host.name} failed (${r.code}): ${r.stdout} ${r.stderr}`);
  const res = r.json as { ips?: Array<{ address: string }> };
  const ip = res.ips?.[0]?.address.split('/')[0];
  if (!ip) throw new Error(`CNI ADD for ${name}: no address in ${r.stdout}`);
  pod.ip = ip;
  lab.save();
  return pod as LabPod & { ip: string };
}

export async function delPod(lab: Lab, host: LabHost, pod: LabPod): Promise<CniCall> {
  return cniInvoke(host.ns, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: pod.containerId, CNI_IFNAME: pod.ifname, CNI_NETNS: `/run/netns/${pod.ns}`, CNI_PATH: '/usr/lib/cni' }, JSON.stringify(podConf(lab, host)));
}

/** Host-side veths the plugin created (tw + 11 hex). */
export function hostVeths(hostNs: string): string[] {
  return ipJson<{ ifname: string }>(hostNs, 'link', 'show')
    .map((l) => l.ifname)
    .filter((n) => /^tw[0-9a-f]{11}$/.test(n))
    .sort();
}
