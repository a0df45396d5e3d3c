// The TAP<->UDP forwarder as TypeScript sees it: owns the native handle and the two fds, and
// pushes decisions (VNI, port, own MAC, forwarding table) into the native loop
// (native/userspace.c). Nothing here runs per packet; the JS thread only configures and reads
// counters, so a busy datapath never stalls the control plane, and a stalled control plane
// never stops forwarding with the last table.
//
// - The TAP is persistent (TUNSETPERSIST): a daemon restart keeps the device, its address,
//   routes and neighbours, exactly like kernel mode keeps its VXLAN device; the new process
//   reattaches by name. A second process attaching the same TAP gets EBUSY (one forwarder per
//   device, by construction).
// - The UDP socket is bound to the underlay IP and the VXLAN port, so it only sees VXLAN for
//   this host; it is reopened when either changes.
// - With `netns`, fds are created inside that namespace (setns is per thread; a socket's or
//   TAP's namespace is fixed at creation). The daemon runs inside its host namespace and
//   leaves it unset; tests and benchmarks drive several "hosts" from one process.
import { inNetns } from '../netns/netns';
import { macBytes, writeIp4, writeMac } from '../ip/bytes';
import { userspaceNative, type ForwarderHandle, type NativeStats, type UserspaceAddon } from './native';
import { TwillError } from '../base/twill-error';

/** Kernel socket buffers for the VXLAN socket: bursts of 64 KB superframes need headroom. */
const SOCKET_BUF_BYTES = 8 * 1024 * 1024;

export interface ForwarderOptions {
  /** Namespace path (/run/netns/X) to create the TAP and socket in; default: ours. */
  netns?: string;
  /** TAP with virtio-net header, TSO4/CSUM offered; on by default (off: one frame per read). */
  offloads?: boolean;
  /** Keep the TAP device when its last fd closes (default true; see the note above). */
  persist?: boolean;
}

export interface ForwardingEntry {
  /** Peer VTEP MAC (the inner destination MAC). */
  mac: string;
  /** Peer underlay IPv4 the datagrams go to (and must come from). */
  dst: string;
}

export class ForwarderError extends TwillError<'ERR_USERSPACE_FORWARDER'> {
  readonly errno: number | undefined;
  readonly op: string;
  constructor(op: string, cause: unknown) {
    const c = cause as { errno?: number; code?: string; message?: string };
    super('ERR_USERSPACE_FORWARDER', `${op}: ${c?.message ?? String(cause)}`, { cause });
    this.name = 'ForwarderError';
    this.op = op;
    this.errno = typeof c?.errno === 'number' ? c.errno : undefined;
  }
}

export class Forwarder {
  private readonly addon: UserspaceAddon;
  private readonly handle: ForwarderHandle;
  private readonly offloads: boolean;
  private readonly persist: boolean;
  private tapFd = -1;
  private udpFd = -1;
  private udpBound = '';
  private config = '';
  private tableSize = 0;
  private closed = false;

  constructor(
    readonly tapName: string,
    vni: number,
    port: number,
    mac: string,
    mtu: number,
    private readonly opts: ForwarderOptions = {},
  ) {
    this.addon = userspaceNative();
    this.offloads = opts.offloads ?? true;
    this.persist = opts.persist ?? true;
    this.handle = this.addon.usCreate(vni, port, macBytes(mac), mtu);
    this.config = `${vni}/${port}/${mac}/${mtu}`;
  }

  private inNs<T>(fn: () => T): T {
    return this.opts.netns ? inNetns(this.opts.netns, fn) : fn();
  }

  private setFds(tapFd: number, udpFd: number): void {
    try {
      this.addon.usSetFds(this.handle, tapFd, this.offloads, udpFd);
    } catch (err) {
      throw new ForwarderError('start forwarder threads', err);
    }
    this.tapFd = tapFd;
    this.udpFd = udpFd;
  }

  /** True when our fd is still attached to a device named tapName (false after a delete). */
  tapAttached(): boolean {
    if (this.tapFd < 0) return false;
    try {
      return this.addon.usTapName(this.tapFd) === this.tapName;
    } catch {
      return false;
    }
  }

  /** Creates the TAP device, or attaches to the persistent one, and restarts the loop on it. */
  openTap(): void {
    this.assertOpen();
    let fd: number;
    try {
      fd = this.inNs(() => this.addon.usOpenTap(this.tapName, this.offloads, this.persist));
    } catch (err) {
      throw new ForwarderError(`open TAP ${this.tapName}`, err);
    }
    this.setFds(fd, this.udpFd);
  }

  /** Binds the VXLAN socket to local:port unless it already is. */
  ensureUdp(local: string, port: number): boolean {
    this.assertOpen();
    const key = `${local}:${port}`;
    if (this.udpFd >= 0 && this.udpBound === key) return false;
    let fd: number;
    try {
      fd = this.inNs(() => this.addon.usOpenUdp(local, port, SOCKET_BUF_BYTES));
    } catch (err) {
      throw new ForwarderError(`bind UDP ${key}`, err);
    }
    this.setFds(this.tapFd, fd);
    this.udpBound = key;
    return true;
  }

  /** VNI and port of the datagrams, our VTEP MAC (loop check) and the TAP's MTU. */
  setConfig(vni: number, port: number, mac: string, mtu: number): void {
    this.assertOpen();
    const key = `${vni}/${port}/${mac}/${mtu}`;
    if (key === this.config) return;
    this.addon.usSetConfig(this.handle, vni, port, macBytes(mac), mtu);
    this.config = key;
  }

  /** Replaces the whole forwarding table (the native loop picks it up on its next batch). */
  setTable(entries: Iterable<ForwardingEntry>): void {
    this.assertOpen();
    const list = [...entries];
    const buf = Buffer.alloc(list.length * 10);
    list.forEach((e, i) => {
      writeMac(buf, i * 10, e.mac);
      writeIp4(buf, i * 10 + 6, e.dst);
    });
    this.addon.usSetTable(this.handle, buf);
    this.tableSize = list.length;
  }

  get size(): number {
    return this.tableSize;
  }

  get running(): boolean {
    return !this.closed && this.tapFd >= 0 && this.udpFd >= 0;
  }

  stats(): NativeStats {
    return this.addon.usStats(this.handle);
  }

  /** Stops the threads and closes both fds; a persistent TAP device stays. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.usClose(this.handle);
    this.tapFd = this.udpFd = -1;
  }

  private assertOpen(): void {
    if (this.closed) throw new ForwarderError('use', new Error('forwarder is closed'));
  }
}
