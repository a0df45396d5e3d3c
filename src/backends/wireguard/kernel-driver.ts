// The kernel WireGuard driver: a link of kind "wireguard" made over rtnetlink, its key, port
// and peers over generic netlink (messages: wg-messages.ts) on the seam's generic netlink
// socket (src/netlink/genl-socket.ts).
// The family is resolved by name (CTRL_CMD_GETFAMILY "wireguard"): the kernel loads the module
// on that request if it can, so the same question is `auto`'s probe (ENOENT: no WireGuard).
// Tested here at the message level only: this kernel has no WireGuard to answer.
import { NetlinkError } from '../../netlink/errors';
import { GenlSocket, resolveFamily } from '../../netlink/genl-socket';
import type { Driver } from '../../dataplane/driver';
import type { WgDeviceSpec } from './backend';
import { deviceState, getDeviceMessage, parseDeviceBody, setDeviceMessage, setDeviceObjects, WG_GENL_NAME } from './wg-messages';
import { deviceOfKind, wireguardDriverOn, type WgAccess, type WgSyncStats, type WireguardDriverOptions } from './wg-driver';

/** Whether the kernel has WireGuard (loading its module if it may), and why not. */
export function kernelWireguardProbe(): { ok: boolean; reason: string } {
  let sock: GenlSocket | undefined;
  try {
    sock = GenlSocket.open(WG_GENL_NAME);
    return { ok: true, reason: `generic netlink family wireguard is ${resolveFamily(sock, WG_GENL_NAME)}` };
  } catch (err) {
    return { ok: false, reason: err instanceof NetlinkError ? err.errnoName : (err as Error).message };
  } finally {
    sock?.close();
  }
}

export function genlAccess(): WgAccess {
  let sock: GenlSocket | undefined;
  let family = 0;
  const ready = (): GenlSocket => {
    if (!sock) {
      sock = GenlSocket.open(WG_GENL_NAME);
      family = resolveFamily(sock, WG_GENL_NAME);
    }
    return sock;
  };
  return {
    label: 'wireguard device (kernel)',
    link(h, s) {
      let link = deviceOfKind(h, s.name, 'wireguard');
      if (!link) h.createLinkOfKind(s.name, 'wireguard', s.mtu);
      link ??= h.getLink(s.name);
      if (!link) throw new Error(`${s.name} vanished right after creation`);
      return link;
    },
    get: async (s) => {
      const so = ready();
      return deviceState(so.exchange(getDeviceMessage(family, so.nextSeq(), s.name), s.name).map((m) => parseDeviceBody(m.data)));
    },
    async set(s, diff) {
      const so = ready();
      for (const d of setDeviceObjects(s.name, diff)) so.exchange(setDeviceMessage(family, so.nextSeq(), d), s.name);
    },
  };
}

export function kernelWireguardDriver(opts: WireguardDriverOptions): Driver<WgDeviceSpec> & { stats(): WgSyncStats } {
  return wireguardDriverOn(genlAccess(), opts);
}
