// The userspace WireGuard driver: wireguard-go makes the TUN device, netlink gives it its MTU,
// address and up state (the generic link attributes), the UAPI socket gets the private key,
// listen port and peers. Routes go through the generic route table like any backend's.
//
// The reconciler is synchronous and the UAPI is a socket: the peers are a table sink whose
// push only records the desired peers; a small loop here converges them (get, diff, one set
// transaction) whenever they change and every `pollMs` — which is also how a peer removed by
// hand (`wg set … remove`) is put back within a second. Its failures are logged once, counted
// and retried on the next tick.
import type { DeviceDriver, Driver, SinkResult, TableSink } from '../../dataplane/driver';
import { convergeLinkAttrs, type DeviceEnsured } from '../../dataplane/link-attrs';
import type { EntryMap, WgPeerEntry } from '../../dataplane/model';
import { routeTable } from '../../dataplane/tables';
import type { NetlinkHandle } from '../../netlink/handle';
import type { WgDeviceSpec } from './backend';
import { uapiExchange, uapiSocketPath } from './uapi-client';
import { diffDevice } from './device-diff';
import { UAPI_GET, checkSetAnswer, formatSet, parseGet } from './uapi-text';
import { recordedPid, startWireguardGo } from './wireguard-go';

export interface WireguardDriverOptions {
  stateDir: string;
  /** The current private key (raw 32 bytes); read on every convergence, so a rotation is taken up. */
  privateKey(): Buffer;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  pollMs?: number;
}

export class WireguardDeviceStarting extends Error {
  readonly code = 'ERR_WG_DEVICE_STARTING' as const;
  constructor(name: string, pid: number) {
    super(`${name}: wireguard-go (pid ${pid}) is creating the device`);
    this.name = 'WireguardDeviceStarting';
  }
}

const START_GRACE_MS = 2000;

export interface WgSyncStats {
  syncs: number;
  writes: number;
  deletes: number;
  failures: number;
}

export function userspaceWireguardDriver(opts: WireguardDriverOptions): Driver<WgDeviceSpec> & { stats(): WgSyncStats } {
  let spec: WgDeviceSpec | undefined;
  let started: { name: string; at: number } | undefined;
  let lastIndex = 0;
  let peers: EntryMap<'wgpeer'> = new Map();
  let running = false;
  let again = false;
  let lastError = '';
  const stats: WgSyncStats = { syncs: 0, writes: 0, deletes: 0, failures: 0 };

  async function syncOnce(s: WgDeviceSpec): Promise<void> {
    const sock = uapiSocketPath(s.name);
    const actual = parseGet(await uapiExchange(sock, UAPI_GET));
    const diff = diffDevice({ privateKeyHex: opts.privateKey().toString('hex'), listenPort: s.listenPort, peers: peers as ReadonlyMap<string, WgPeerEntry> }, actual);
    const text = formatSet(diff);
    if (!text) return;
    checkSetAnswer(await uapiExchange(sock, text));
    stats.writes += diff.upsert.length;
    stats.deletes += diff.remove.length;
    // Never the transaction itself: it holds the private key.
    const keyOrPort = diff.privateKeyHex !== undefined || diff.listenPort !== undefined;
    opts.log.info({ device: s.name, peersWritten: diff.upsert.length, peersRemoved: diff.remove.length, deviceKeyOrPort: keyOrPort }, 'wireguard peers converged');
  }

  function sync(): void {
    if (!spec) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    stats.syncs++;
    syncOnce(spec)
      .then(() => {
        lastError = '';
      })
      .catch((err: Error) => {
        stats.failures++;
        if (err.message !== lastError) opts.log.warn({ err: err.message }, 'wireguard UAPI convergence failed; retrying');
        lastError = err.message;
      })
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          sync();
        }
      });
  }

  const poll = setInterval(sync, opts.pollMs ?? 250);
  poll.unref();

  const device: DeviceDriver<WgDeviceSpec> = {
    label: 'wireguard device',
    ensure(h: NetlinkHandle, s: WgDeviceSpec): DeviceEnsured {
      const link = h.getLink(s.name);
      if (!link) {
        // One we started moments ago is still creating its TUN; any other recorded process
        // outlived its device (wireguard-go keeps running when its link is deleted): replaced.
        const starting = started && started.name === s.name && Date.now() - started.at < START_GRACE_MS ? recordedPid(opts.stateDir, s.name) : undefined;
        const pid = starting ?? startWireguardGo(opts.stateDir, s.name);
        if (starting === undefined) started = { name: s.name, at: Date.now() };
        throw new WireguardDeviceStarting(s.name, pid);
      }
      const keyChanged = spec?.publicKey !== s.publicKey;
      spec = s;
      const attrs = convergeLinkAttrs(h, link, s);
      const changes = [...attrs.changes];
      const fresh = link.index !== lastIndex;
      if (fresh) changes.push(lastIndex === 0 ? 'adopted' : 'recreated');
      lastIndex = link.index;
      if (fresh || keyChanged) sync();
      return { index: link.index, changes, entriesLost: fresh || attrs.broughtUp };
    },
  };

  const sink: TableSink<'wgpeer'> = {
    kind: 'wgpeer',
    push(entries): SinkResult | null {
      if (entries === peers) return null;
      peers = entries;
      sync();
      return { writes: 0, deletes: 0, size: entries.size };
    },
  };

  return {
    device,
    tables: [routeTable],
    sinks: [sink as TableSink],
    stats: () => ({ ...stats }),
    stop: () => clearInterval(poll),
  };
}
