// Every backend twill has, by its BackendType. Adding one is a folder in src/backends/ and a
// line here (and its name in the network config's list of types).
import type { DataplaneMode } from '../config/daemon';
import { NetworkConfigError, type BackendConfig, type NetworkConfig } from '../config/network';
import type { DriverChoice } from '../dataplane/driver';
import type { NetlinkHandle } from '../netlink/handle';
import type { UserspaceDataplaneOptions } from '../userspace/dataplane';
import { hostGwBackend } from './host-gw/backend';
import { hostGwDriver } from './host-gw/drivers';
import type { Backend, HostIdentity } from './types';
import { vxlanBackend } from './vxlan/backend';
import { vxlanDriver } from './vxlan/drivers';
import { WIREGUARD_DEVICE, wireguardBackend } from './wireguard/backend';
import { stopWireguardGo } from './wireguard/wireguard-go';
import { wireguardDriver } from './wireguard/drivers';
import type { WireguardDriverOptions } from './wireguard/wg-driver';

export interface DriverRequest {
  dataplane: DataplaneMode;
  h: NetlinkHandle;
  userspace?: UserspaceDataplaneOptions;
  /** The wireguard backend's key and state dir (its drivers need the private key). */
  wireguard?: WireguardDriverOptions;
}


export interface Registered {
  // The registry holds backends of every data type; each is used with its own leases only.
  backend: Backend<any, any>;
  driver(req: DriverRequest): DriverChoice;
  /**
   * Stops what this backend runs outside the kernel when another is active (wireguard:
   * its wireguard-go, which outlives its deleted device). Returns what it stopped, for logs.
   */
  retire?(ctx: RetireContext): string[];
}

export interface RetireContext {
  stateDir: string;
  identity: HostIdentity;
}

const BACKENDS: Record<BackendConfig['type'], Registered> = {
  vxlan: { backend: vxlanBackend, driver: (r) => vxlanDriver(r.dataplane, r.h, r.userspace) },
  'host-gw': { backend: hostGwBackend, driver: () => ({ driver: hostGwDriver(), mode: 'kernel', reason: 'host-gw has one driver' }) },
  wireguard: {
    backend: wireguardBackend,
    driver: (r) => {
      if (!r.wireguard) throw new RangeError('the wireguard backend needs its key options');
      return wireguardDriver(r.dataplane, r.wireguard);
    },
    retire: ({ stateDir, identity }) => {
      const dev = identity.wireguardDevice ?? WIREGUARD_DEVICE;
      return stopWireguardGo(stateDir, dev) ? [`wireguard-go of ${dev}`] : [];
    },
  },
};

export function backendFor(config: NetworkConfig): Registered {
  const r = BACKENDS[config.backend.type];
  if (!r) throw new NetworkConfigError('Backend.Type', `no backend ${JSON.stringify(config.backend.type)}`);
  return r;
}

/** Every inactive backend's leftovers outside the kernel, stopped; what was stopped. */
export function retireInactive(active: BackendConfig['type'], ctx: RetireContext): string[] {
  return Object.entries(BACKENDS).flatMap(([type, r]) => (type === active || !r.retire ? [] : r.retire(ctx)));
}

/** A link any backend owns by name (swept when the active backend does not want it). */
export function ownedByAnyBackend(name: string): boolean {
  return Object.values(BACKENDS).some((r) => r.backend.ownsLink(name));
}
