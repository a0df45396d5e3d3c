// A simulated twilld for bench/controlplane.ts: the daemon's real etcd registry (own client,
// subnet lease with TTL and renewals, list + watch from the listed revision, re-list on
// compaction) and its real peer state and planning (src/daemon/peer-state.ts: decode, plan,
// the shared rules, incremental per event) — everything but the kernel. Many per process.
//
// Run as a worker (forked by bench/controlplane.ts): it starts `stable` hosts that stay for the
// whole run and are timed, plus churners that join and leave at a given rate; it reports when
// every stable host planned a probe lease, and its CPU per planned event.
import { vxlanBackend } from '../src/backends/vxlan/backend';
import { parseNetworkConfig, type NetworkConfig } from '../src/config/network';
import { parseIp4 } from '../src/ip/ipv4';
import { PeerState } from '../src/daemon/peer-state';
import { EtcdRegistry } from '../src/subnet/etcd-registry';
import { decodeLease, subnetKey, type Lease } from '../src/subnet/lease';

export const PREFIX = '/coreos.com/network';
export const NETWORK_CONFIG = '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}';
/** Probe leases (put by the coordinator) live here; hosts never lease from 10.255/16. */
export const PROBE_PREFIX = `${PREFIX}/subnets/10.255.`;

export type ToWorker =
  | { type: 'start'; endpoint: string; stable: number; firstIndex: number; ttlSeconds: number; churnPerS: number }
  | { type: 'window'; on: boolean }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready'; hosts: number }
  | { type: 'planned'; key: string; hosts: number; lastAt: number }
  | { type: 'stats'; cpuMs: number; events: number; wallMs: number; joins: number; leaves: number; failures: number }
  | { type: 'error'; message: string };

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const wallNow = (): number => performance.timeOrigin + performance.now();

interface Counters {
  events: number;
  onProbe(host: SimHost, key: string): void;
}

export class SimHost {
  private readonly reg: EtcdRegistry;
  private readonly peers = new PeerState();
  private own: Lease | undefined;

  constructor(readonly index: number, endpoint: string, private readonly config: NetworkConfig, private readonly counters: Counters) {
    this.reg = EtcdRegistry.create({ endpoints: [endpoint], prefix: PREFIX }, quiet);
  }

  /** Lease a subnet (TTL, renewed), list every lease, plan them all, watch from there. */
  async join(ttlSeconds: number): Promise<void> {
    const i = this.index;
    const publicIp = parseIp4(`172.${16 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`);
    const vtepMac = `0e:5e:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}:01`;
    this.own = await this.reg.acquire({
      config: this.config,
      publicIp,
      codec: vxlanBackend.codec,
      backendData: vxlanBackend.ownData({ config: this.config, vtepMac }),
      ttlSeconds,
      renewMarginSeconds: Math.max(1, Math.floor(ttlSeconds / 3)),
    });
    const listing = this.reg.takeAcquireListing() ?? (await this.reg.listSubnets());
    this.peers.replaceAll(listing.entries);
    this.rebuild();
    this.reg.watchSubnets(listing.revision, {
      put: (key, value) => this.onEvent(key, value),
      delete: (key) => this.onEvent(key, undefined),
      resync: (entries) => {
        this.peers.replaceAll(entries);
        this.rebuild();
      },
    });
  }

  private rebuild(): void {
    const own = this.own!;
    const config = this.config;
    this.peers.rebuild({
      backend: vxlanBackend,
      input: { config, own, underlay: { index: 2, ip: '172.30.0.1', mtu: 1500 } },
      decode: (key, value) => {
        const r = decodeLease(key, value, { prefix: PREFIX, config, own, codec: vxlanBackend.codec });
        return r.ok ? r.lease : null;
      },
    });
  }

  private onEvent(key: string, value: string | undefined): void {
    const d = this.peers.apply(key, value);
    if (!d) return;
    this.counters.events++;
    if (value !== undefined && d.joined.length > 0 && key.startsWith(PROBE_PREFIX)) this.counters.onProbe(this, key);
  }

  /** A host taken out of the cluster: its lease deleted, its client closed. */
  async leave(): Promise<void> {
    if (this.own) await this.reg.sharedClient.delete().key(subnetKey(PREFIX, this.own.subnet)).catch(() => undefined);
    await this.reg.close();
  }

  async close(): Promise<void> {
    await this.reg.close();
  }
}

async function worker(): Promise<void> {
  const send = (m: FromWorker): void => void process.send!(m);
  const config = parseNetworkConfig(NETWORK_CONFIG);
  const stable: SimHost[] = [];
  const churners = new Set<SimHost>();
  const probes = new Map<string, { seen: Set<SimHost>; lastAt: number }>();
  let measuring = false;
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  const stats = { joins: 0, leaves: 0, failures: 0 };
  const stableSet = new Set<SimHost>();
  const counters: Counters = {
    events: 0,
    onProbe(host, key) {
      if (!stableSet.has(host)) return;
      let p = probes.get(key);
      if (!p) probes.set(key, (p = { seen: new Set(), lastAt: 0 }));
      p.seen.add(host);
      p.lastAt = wallNow();
      if (p.seen.size === stable.length) {
        send({ type: 'planned', key, hosts: p.seen.size, lastAt: p.lastAt });
        probes.delete(key);
      }
    },
  };
  let churnTimer: NodeJS.Timeout | undefined;
  let next = 0;
  process.on('message', (m: ToWorker) => {
    void (async () => {
      if (m.type === 'start') {
        next = m.firstIndex + m.stable;
        // Joined a few at a time, as a fleet comes up: not 250 acquires in one burst.
        for (let i = 0; i < m.stable; i += 10) {
          const batch = Array.from({ length: Math.min(10, m.stable - i) }, (_, k) => new SimHost(m.firstIndex + i + k, m.endpoint, config, counters));
          await Promise.all(batch.map((h) => h.join(m.ttlSeconds)));
          for (const h of batch) {
            stable.push(h);
            stableSet.add(h);
          }
        }
        send({ type: 'ready', hosts: stable.length });
        if (m.churnPerS > 0) {
          churnTimer = setInterval(() => {
            // One joins; once a few are up, the oldest leaves: the fleet's size stays put.
            const h = new SimHost(next++, m.endpoint, config, counters);
            h.join(m.ttlSeconds).then(
              () => {
                churners.add(h);
                if (measuring) stats.joins++;
              },
              () => void stats.failures++,
            );
            if (churners.size > 3) {
              const old = churners.values().next().value as SimHost;
              churners.delete(old);
              void old.leave().then(() => void (measuring && stats.leaves++));
            }
          }, 1000 / m.churnPerS);
        }
      } else if (m.type === 'window') {
        if (m.on) {
          measuring = true;
          cpu0 = process.cpuUsage();
          t0 = performance.now();
          counters.events = 0;
        } else {
          measuring = false;
          const c = process.cpuUsage(cpu0);
          send({ type: 'stats', cpuMs: (c.user + c.system) / 1000, events: counters.events, wallMs: performance.now() - t0, ...stats });
        }
      } else if (m.type === 'stop') {
        if (churnTimer) clearInterval(churnTimer);
        await Promise.all([...stable, ...churners].map((h) => h.close().catch(() => undefined)));
        process.exit(0);
      }
    })().catch((err: unknown) => send({ type: 'error', message: String((err as Error)?.stack ?? err) }));
  });
}

if (process.argv.includes('--worker')) void worker();
