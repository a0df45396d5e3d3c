// A WireGuard driver, whichever way the device is reached (WgAccess: wireguard-go's UAPI or
// the kernel's generic netlink): netlink gives the device its MTU, address and up state (the
// generic link attributes), the access gets the private key, listen port and peers. Routes go
// through the generic route table like any backend's.
//
// The reconciler is synchronous; the UAPI is a socket. So the peers are a table sink whose
// push records the desired peers, and a small loop here converges them (get, diff, set)
// whenever they or the device change and every `pollMs` — which is also how a peer removed by
// hand (`wg set … remove`) is put back within a second. Failures are logged once per distinct
// message, counted, and retried on the next tick. The private key is read from the key
// holder on every pass (a rotation is taken up) and never logged.
import type { DeviceDriver, Driver, SinkResult, TableSink } from '../../dataplane/driver';
import { convergeLinkAttrs, type DeviceEnsured } from '../../dataplane/link-attrs';
import type { EntryMap, WgPeerEntry } from '../../dataplane/model';
import { routeTable } from '../../dataplane/tables';
import type { NetlinkHandle } from '../../netlink/handle';
import type { LinkState } from '../../netlink/types';
import type { WgDeviceSpec } from './backend';
import { diffDevice, diffIsEmpty, type DeviceDiff, type WgDeviceState } from './device-diff';

export interface WireguardDriverOptions {
  stateDir: string;
  /** The current private key (raw 32 bytes). */
  privateKey(): Buffer;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  pollMs?: number;
}

export interface WgAccess {
  /** For logs: "wireguard device (wireguard-go)". */
  readonly label: string;
  /** The device's link: made (or its maker started) when missing; throws while it is being made. */
  link(h: NetlinkHandle, s: WgDeviceSpec): LinkState;
  get(s: WgDeviceSpec): Promise<WgDeviceState>;
  set(s: WgDeviceSpec, diff: DeviceDiff): Promise<void>;
}

/**
 * Our device if it is of `kind` ('tun': wireguard-go's, 'wireguard': the kernel's); one of
 * another kind under our name is deleted (a switch between drivers), so the caller makes its own.
 */
export function deviceOfKind(h: NetlinkHandle, name: string, kind: string): LinkState | undefined {
  const link = h.getLink(name);
  if (!link || link.kind === kind) return link;
  h.deleteLink(link);
  return undefined;
}

export interface WgSyncStats {
  syncs: number;
  writes: number;
  deletes: number;
  failures: number;
}

export function wireguardDriverOn(access: WgAccess, opts: WireguardDriverOptions): Driver<WgDeviceSpec> & { stats(): WgSyncStats } {
  let spec: WgDeviceSpec | undefined;
  let lastIndex = 0;
  let peers: EntryMap<'wgpeer'> = new Map();
  let running = false;
  let again = false;
  let lastError = '';
  /** The peers map and device the last successful pass converged; anything else is pending. */
  let applied: { peers: EntryMap<'wgpeer'>; device: string } | undefined;
  /** What of the spec a pass applies (a recompute makes a new, equal spec object). */
  const deviceKey = (s: WgDeviceSpec): string => `${s.name}|${s.listenPort}|${s.publicKey}`;
  const stats: WgSyncStats = { syncs: 0, writes: 0, deletes: 0, failures: 0 };

  async function syncOnce(s: WgDeviceSpec): Promise<void> {
    const want = peers;
    await converge(s);
    applied = { peers: want, device: deviceKey(s) };
  }

  async function converge(s: WgDeviceSpec): Promise<void> {
    const actual = await access.get(s);
    const diff = diffDevice({ privateKeyHex: opts.privateKey().toString('hex'), listenPort: s.listenPort, peers: peers as ReadonlyMap<string, WgPeerEntry> }, actual);
    if (diffIsEmpty(diff)) return;
    await access.set(s, diff);
    stats.writes += diff.upsert.length;
    stats.deletes += diff.remove.length;
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
        applied = undefined;
        stats.failures++;
        // Said once per distinct failure (a log de-duplication, not a decision).
        const said = String(err);
        if (said !== lastError) opts.log.warn({ err: err.message }, 'wireguard convergence failed; retrying');
        lastError = said;
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
    label: access.label,
    ensure(h: NetlinkHandle, s: WgDeviceSpec): DeviceEnsured {
      const link = access.link(h, s);
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
    // Readiness waits for the peers on the device, not only for the routes.
    // (The reconciler re-checks on its retry timer, so it reports convergence ≤ 250 ms after.)
    pending: () => spec !== undefined && (applied?.peers !== peers || applied.device !== deviceKey(spec)),
  };

  return {
    device,
    tables: [routeTable],
    sinks: [sink as TableSink],
    stats: () => ({ ...stats }),
    stop: () => clearInterval(poll),
  };
}
