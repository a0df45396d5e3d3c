// Lab helpers for e2e tests and benchmarks: a uniquely named lab in a temp dir, and oracles
// that read a host's kernel state with `ip -j` / `bridge -j` inside its namespace.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ETCD_PREFIX, Lab, type LabHost, type LabOptions, type LabPod } from '../../src/lab/lab';
import { bridgeJson, ipJson } from './netns';

/** A lab for one test file; if creating it fails halfway, what it started is removed first. */
export async function createTestLab(opts: LabOptions = {}): Promise<Lab> {
  const name = `t${randomBytes(3).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twill-lab-${name}-`));
  try {
    return await Lab.create({ name, dir, ...opts });
  } catch (err) {
    // The caller never gets a lab to take down in its after-hook: etcd must not outlive this.
    const half = Lab.load(dir);
    const down = half ? await half.down().then(() => undefined, (e: unknown) => e) : undefined;
    if (down) throw new AggregateError([err, down], `lab ${name} failed to start, and its teardown left something: ${(down as Error).message}`);
    throw err;
  }
}

export interface HostEntries {
  routes: string[];
  neighs: string[];
  fdb: string[];
}

/** The twill entries a host's kernel holds, as sorted comparable strings. */
export function hostEntries(ns: string, dev = 'twill.1'): HostEntries {
  const routes = ipJson<{ dst: string; gateway?: string; dev: string; flags: string[] }>(ns, 'route', 'show', 'proto', '113')
    .map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}${r.flags.includes('onlink') ? ' onlink' : ''}`)
    .sort();
  let neighs: string[] = [];
  let fdb: string[] = [];
  try {
    neighs = ipJson<{ dst: string; lladdr?: string; state: string[] }>(ns, 'neigh', 'show', 'dev', dev)
      .map((n) => `${n.dst} lladdr ${n.lladdr} ${n.state.join(',')}`)
      .sort();
    fdb = bridgeJson<{ mac: string; dst?: string; state?: string; flags?: string[] }>(ns, 'fdb', 'show', 'dev', dev)
      .map((f) => `${f.mac} dst ${f.dst} ${(f.flags ?? []).join(',')} ${f.state ?? ''}`.trim())
      .sort();
  } catch {
    /* device missing */
  }
  return { routes, neighs, fdb };
}

export function expectedEntries(peers: Array<{ subnet: string; publicIp: string; vtepMac: string }>): HostEntries {
  return {
    routes: peers.map((p) => `${p.subnet} via ${p.subnet.split('/')[0]} dev twill.1 onlink`).sort(),
    neighs: peers.map((p) => `${p.subnet.split('/')[0]} lladdr ${p.vtepMac} PERMANENT`).sort(),
    fdb: peers.map((p) => `${p.vtepMac} dst ${p.publicIp} self permanent`).sort(),
  };
}

export function pingFrom(ns: string, target: string, opts: { count?: number; timeoutS?: number } = {}): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(opts.count ?? 1), '-W', String(opts.timeoutS ?? 1), target], {
    encoding: 'utf8',
  });
  return r.status === 0;
}

/** Every lease in the lab's etcd as stored (flannel's JSON), by subnet ("10.244.7.0/24"). */
export async function leasesBySubnet<L>(lab: Lab): Promise<Map<string, L>> {
  const admin = await lab.admin();
  try {
    const raw = await admin.list(`${ETCD_PREFIX}/subnets/`);
    return new Map([...raw].map(([k, v]) => [k.slice(`${ETCD_PREFIX}/subnets/`.length).replace('-', '/'), JSON.parse(v) as L]));
  } finally {
    admin.close();
  }
}

/** Every lease in the lab's etcd, by its host's underlay IP (PublicIP), with its subnet added. */
export async function leases<L extends { PublicIP: string }>(lab: Lab): Promise<Map<string, L & { subnet: string }>> {
  return new Map([...(await leasesBySubnet<L>(lab))].map(([subnet, l]) => [l.PublicIP, { ...l, subnet }]));
}

/** Writes the network config and restarts `hosts`' daemons on it, waiting for each to be ready again. */
export async function setConfigAndRestart(lab: Lab, hosts: readonly LabHost[], config: string): Promise<void> {
  const admin = await lab.admin();
  try {
    await admin.put(`${ETCD_PREFIX}/config`, config);
  } finally {
    admin.close();
  }
  for (const h of hosts) await lab.stopDaemon(h);
  const since = new Map(hosts.map((h) => [h.name, lab.logSize(h)]));
  for (const h of hosts) lab.startDaemon(h);
  for (const h of hosts) await lab.waitReady(h, 30_000, since.get(h.name));
}

/** A pod's address without its prefix length (the lab records CIDR notation). */
export const podIp = (p: LabPod): string => p.ip!.split('/')[0]!;

/** The first line of a host's /metrics that matches. */
export const metricLine = (h: LabHost, line: RegExp): string | undefined => httpGetInNs(h.ns, 9464, '/metrics').body.split('\n').find((l) => line.test(l));

/** Every pod pings every pod on another host once; returns the pairs that failed ("a->b"). */
export function meshFailures(pods: readonly LabPod[], timeoutS = 1): string[] {
  const failed: string[] = [];
  for (const a of pods) for (const b of pods) if (a.host !== b.host && !pingFrom(a.ns, podIp(b), { count: 1, timeoutS })) failed.push(`${a.name}->${b.name}`);
  return failed;
}

/** GET http://127.0.0.1:<port><path> from inside a namespace; returns status and body. */
export function httpGetInNs(ns: string, port: number, urlPath: string): { status: number; body: string } {
  const script = `fetch('http://127.0.0.1:${port}${urlPath}').then(async r=>{process.stdout.write(JSON.stringify({status:r.status,body:await r.text()}))}).catch(e=>{process.stdout.write(JSON.stringify({status:0,body:String(e)}))})`;
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', env });
  try {
    return JSON.parse(r.stdout) as { status: number; body: string };
  } catch {
    return { status: 0, body: r.stderr };
  }
}
