// The userspace WireGuard driver: wireguard-go (started and adopted by wireguard-go.ts) makes
// the TUN device; its UAPI socket takes the key, port and peers (uapi-text.ts). The loop that
// converges them is wg-driver.ts, shared with the kernel driver.
import type { Driver } from '../../dataplane/driver';
import type { WgDeviceSpec } from './backend';
import { uapiExchange, uapiSocketPath } from './uapi-client';
import { UAPI_GET, checkSetAnswer, formatSet, parseGet } from './uapi-text';
import { deviceOfKind, wireguardDriverOn, type WgAccess, type WgSyncStats, type WireguardDriverOptions } from './wg-driver';
import { recordedPid, startWireguardGo } from './wireguard-go';
import { TwillError } from '../../base/twill-error';

export class WireguardDeviceStarting extends TwillError<'ERR_WG_DEVICE_STARTING'> {
  constructor(name: string, pid: number) {
    super('ERR_WG_DEVICE_STARTING', `${name}: wireguard-go (pid ${pid}) is creating the device`);
    this.name = 'WireguardDeviceStarting';
  }
}

/** How long a wireguard-go we started may take to create its TUN before it counts as stale. */
const START_GRACE_MS = 2000;

export function uapiAccess(stateDir: string): WgAccess {
  let started: { name: string; at: number } | undefined;
  return {
    label: 'wireguard device (wireguard-go)',
    link(h, s) {
      // A device of another kind under our name (the kernel's WireGuard, before a switch to
      // userspace) has no UAPI socket: it goes, and wireguard-go makes its own.
      const link = deviceOfKind(h, s.name, 'tun');
      if (link) {
        started = undefined; // its device appeared: from now on a missing device means a stale process
        return link;
      }
      // One we started moments ago is still creating its TUN; any other recorded process
      // outlived its device (wireguard-go keeps running when its link is deleted): replaced.
      const starting = started && started.name === s.name && Date.now() - started.at < START_GRACE_MS ? recordedPid(stateDir, s.name) : undefined;
      const pid = starting ?? startWireguardGo(stateDir, s.name);
      if (starting === undefined) started = { name: s.name, at: Date.now() };
      // The pass fails and is retried; the new link's netlink event brings the next one sooner.
      throw new WireguardDeviceStarting(s.name, pid);
    },
    get: async (s) => parseGet(await uapiExchange(uapiSocketPath(s.name), UAPI_GET)),
    async set(s, diff) {
      const text = formatSet(diff);
      // Never logged: it holds the private key.
      if (text) checkSetAnswer(await uapiExchange(uapiSocketPath(s.name), text));
    },
  };
}

export function userspaceWireguardDriver(opts: WireguardDriverOptions): Driver<WgDeviceSpec> & { stats(): WgSyncStats } {
  return wireguardDriverOn(uapiAccess(opts.stateDir), opts);
}
