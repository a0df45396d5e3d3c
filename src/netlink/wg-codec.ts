// The adapter to the `netlink` package's WireGuard structs (netlink/dist/wg): WGDEVICE_A_* and
// WGPEER_A_* attributes to and from plain objects. With codec.ts (rtnetlink), the only files
// that import the package. Its Commands enum is not used: it says GET_DEVICE = 1,
// SET_DEVICE = 2, but the kernel's enum wg_cmd starts at 0 (the backend names the kernel's).
import { formatDevice, parseDevice, type Device, type Peer } from 'netlink/dist/wg/structs';
import { AttrStream } from 'netlink/dist/structs';

export type WgDevice = Device;
export type WgPeer = Peer;

/** A device's attributes, padded between each other, as a message body's attribute part. */
export function encodeWgDevice(d: WgDevice): Uint8Array[] {
  const s = new AttrStream();
  s.emit(formatDevice(d));
  return s.bufs;
}

/** The device in a run of WGDEVICE_A_* attributes. */
export function parseWgDevice(attrs: Buffer): WgDevice {
  return parseDevice(attrs);
}
