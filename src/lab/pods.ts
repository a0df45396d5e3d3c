// Pods of the lab: a network namespace per pod, wired by the twill CNI plugin invoked exactly
// as a runtime does (cni-exec.ts) in its host's namespace. A pod is recorded in lab.json
// before the plugin runs, so `down` finds it even if ADD crashed halfway.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NetlinkHandle } from '../netlink/handle';
import { createNetns, deleteNetns, netnsExists, netnsPath } from '../netns/netns';
import { CNI_PLUGIN_PATH, CNI_BIN_DIR } from '../install/layout';
import { addResultAddress, describeCniError, runCni, type CniCommand } from './cni-exec';
import type { LabContext, LabHost, LabPod } from './lab-state';

export const POD_IFNAME = 'eth0';

/** The plugin executable: the installed wrapper when the lab has an install root. */
export function cniPlugin(lab: LabContext): { plugin: string; cniPath: string } {
  const root = lab.state.installRoot;
  if (root) return { plugin: path.join(root, CNI_PLUGIN_PATH), cniPath: path.join(root, CNI_BIN_DIR) };
  // A lab built through the API alone (tests, benchmarks) runs the plugin from this tree.
  const bin = path.join(lab.dir, 'cni-bin');
  const plugin = path.join(bin, 'twill');
  if (!fs.existsSync(plugin)) {
    fs.mkdirSync(bin, { recursive: true });
    const script = path.resolve(__dirname, '..', 'cmd', 'twill.js');
    fs.writeFileSync(plugin, `#!/bin/sh\nexec '${process.execPath}' '${script}' "$@"\n`, { mode: 0o755 });
  }
  return { plugin, cniPath: bin };
}

/** The network configuration the lab hands the plugin for pods on `host`. */
export function podNetworkConfig(lab: LabContext, host: LabHost): Record<string, unknown> {
  return { cniVersion: '1.0.0', name: 'twill', type: 'twill', subnetFile: lab.subnetFile(host), dataDir: path.join(host.dir, 'cni') };
}

function invoke(lab: LabContext, pod: LabPod, command: CniCommand, timeoutMs?: number) {
  const host = lab.host(pod.host);
  const { plugin, cniPath } = cniPlugin(lab);
  return runCni({
    plugin,
    hostNsPath: netnsPath(host.ns),
    command,
    containerId: pod.containerId,
    netnsPath: netnsPath(pod.ns),
    ifname: pod.ifname,
    cniPath,
    config: podNetworkConfig(lab, host),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  });
}

function bringUpLoopback(nsName: string): void {
  // What a runtime's loopback step does; a pod also needs lo to reach its own address.
  const h = NetlinkHandle.open({ netns: netnsPath(nsName) });
  try {
    const lo = h.getLink('lo');
    if (lo && !lo.up) h.setLink(lo, { up: true });
  } finally {
    h.close();
  }
}

/** Adds pod `name` (default: the host's next "<host>-p<k>") on `host`. Idempotent per name. */
export async function addPod(lab: LabContext, host: LabHost, name?: string): Promise<LabPod> {
  const n = name ?? `${host.name}-p${lab.state.pods.filter((p) => p.host === host.name).length + 1}`;
  let pod = lab.state.pods.find((p) => p.name === n);
  if (pod && pod.ip && netnsExists(pod.ns)) return pod;
  if (pod) {
    // Left half-done by an interrupted run: DEL (which tolerates anything missing), then ADD.
    await invoke(lab, pod, 'DEL').catch(() => undefined);
  } else {
    pod = { name: n, host: host.name, ns: `twl-${lab.state.name}-${n}`, containerId: `twill-lab-${lab.state.name}-${n}`, ifname: POD_IFNAME };
    lab.state.pods.push(pod);
    lab.save();
  }
  createNetns(pod.ns);
  bringUpLoopback(pod.ns);
  const out = await invoke(lab, pod, 'ADD');
  pod.ip = addResultAddress(out, `pod ${n} on ${host.name}`);
  lab.save();
  return pod;
}

/**
 * Removes a pod as a runtime does (CNI DEL), then its namespace and record. With `bestEffort`
 * a failing DEL is ignored (used by `down`, which must finish whatever state things are in).
 */
export async function removePod(lab: LabContext, name: string, opts: { bestEffort?: boolean } = {}): Promise<void> {
  const pod = lab.state.pods.find((p) => p.name === name);
  if (!pod) return;
  const hostAlive = lab.state.hosts.some((h) => h.name === pod.host && netnsExists(h.ns));
  if (hostAlive) {
    try {
      const out = await invoke(lab, pod, 'DEL', opts.bestEffort ? 10_000 : undefined);
      if (out.exitCode !== 0 && !opts.bestEffort) throw new Error(`CNI DEL for pod ${name} failed: ${describeCniError(out)}`);
    } catch (err) {
      if (!opts.bestEffort) throw err;
    }
  }
  deleteNetns(pod.ns);
  lab.state.pods = lab.state.pods.filter((p) => p !== pod);
  lab.save();
}
