// What a lab is made of, as recorded in its lab.json: hosts, pods, etcd, where twill is
// installed. Plain data, in a file of its own so that lab.ts (the Lab class) and the parts it
// uses (pods.ts) both depend on it instead of on each other.
import type { SpawnedProc } from './procs';
import type { Segment } from './topology';

export interface LabHost {
  name: string;
  ns: string;
  ip: string;
  dir: string;
  /** Underlay segment: 'a' (the underlay bridge) or 'b' (behind the router). Absent: 'a'. */
  segment?: Segment;
  daemon?: SpawnedProc;
  daemonArgs?: string[];
  /** `twill serve` of this host (see src/cni/server.ts), when started. */
  cniServer?: SpawnedProc;
}

export interface LabPod {
  name: string;
  host: string;
  ns: string;
  containerId: string;
  ifname: string;
  ip?: string;
}

export interface LabState {
  name: string;
  dir: string;
  underlayNs: string;
  /** The world beyond the cluster (topology.ts); absent in labs made before it existed. */
  outsideNs?: string;
  /** The router namespace joining segment B to A, once a host was put on B. */
  routerNs?: string;
  mtu: number;
  etcd?: SpawnedProc;
  hosts: LabHost[];
  pods: LabPod[];
  networkConfig: string;
  /**
   * Where `twillctl install` put twill for this lab (<dir>/root). When set, daemons and the CNI
   * plugin run from there — the operators' install path, exercised by every lab.
   */
  installRoot?: string;
}

/** What pod wiring needs of a lab (the Lab class has it): its state, files and host lookup. */
export interface LabContext {
  readonly state: LabState;
  readonly dir: string;
  save(): void;
  host(name: string): LabHost;
  subnetFile(host: LabHost): string;
}
