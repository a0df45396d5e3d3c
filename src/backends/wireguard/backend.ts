// The WireGuard backend, pure half (flannel's {"Backend":{"Type":"wireguard"}}). Per peer:
//   wgpeer  <its public key>  endpoint <PublicIP>:<Port>  allowed-ips <its subnet>
//   route   <its subnet> dev twill-wg proto 113
// and once, whatever the peers (fail closed):
//   route   unreachable <cluster network> proto 113
// Our own subnet is more specific (the CNI bridge's connected route) and so is every peer's
// route; anything else in the cluster network — a peer whose route vanished with a deleted
// or downed twill-wg, a peer not programmed yet — hits the unreachable route and is dropped
// with an ICMP error, never sent out the default route in clear.
//
// MTU: underlay − 60. WireGuard over IPv4 adds IPv4 20 + UDP 8 + its header 16 (type,
// receiver index, counter) + the Poly1305 tag 16; padding to 16 bytes is capped at the
// device MTU, so a full-size packet gets none. flannel takes 80 to allow an IPv6 outer
// header; twill's underlay is IPv4 only (PublicIPv6 is always null), so Calico's 60 is exact
// and 20 bytes per packet are not wasted.
//
// The device name is twill-wg on a real host. wireguard-go's UAPI socket is
// /var/run/wireguard/<name>.sock on the shared filesystem (it watches that path even when
// handed a socket): lab hosts, network namespaces on one machine, each get their own name
// (twill-wg-<host>), given to twilld by --wireguard-device.
import type { WireguardConfig } from '../../config/network';
import { DEVICE, type WgPeerEntry } from '../../dataplane/model';
import { formatIp4, formatPrefix4 } from '../../ip/ipv4';
import type { Backend, PeerPlan, PlannedEntry } from '../types';
import { wireguardCodec, type WireguardData } from './codec';

export const WIREGUARD_OVERHEAD = 60;
export const WIREGUARD_DEVICE = 'twill-wg';
const DEVICE_NAME = /^twill-wg(-[A-Za-z0-9_.]{1,6})?$/;

export interface WgDeviceSpec {
  name: string;
  /** Underlay MTU − 60. */
  mtu: number;
  /** <subnet>.0 (/32) once our lease is held. */
  address: string | undefined;
  listenPort: number;
  /** Ours, base64: the private key behind it is the driver's (never in a spec, never logged). */
  publicKey: string;
}

function wgConfig(c: { backend: { type: string } }): WireguardConfig {
  if (c.backend.type !== 'wireguard') throw new RangeError(`wireguard backend used with a ${c.backend.type} network config`);
  return c.backend as WireguardConfig;
}

export const wireguardBackend: Backend<WireguardData, WgDeviceSpec> = {
  type: 'wireguard',
  codec: wireguardCodec,
  tables: ['route', 'wgpeer'],
  ownData({ config, wireguardPublicKey }) {
    if (!wireguardPublicKey) throw new RangeError('the wireguard backend needs this host’s public key');
    return { publicKey: wireguardPublicKey, port: wgConfig(config).listenPort };
  },
  podMtu: (_config, underlayMtu) => underlayMtu - WIREGUARD_OVERHEAD,
  needsReach: () => false,
  // No sourceFilterPort: WireGuard itself drops every datagram no peer's key authenticates.
  ownsLink: (name) => DEVICE_NAME.test(name),
  device({ config, own, ownHeld, underlay, identity }) {
    return {
      name: identity?.wireguardDevice ?? WIREGUARD_DEVICE,
      mtu: underlay.mtu - WIREGUARD_OVERHEAD,
      address: ownHeld ? formatIp4(own.subnet.ip) : undefined,
      listenPort: wgConfig(config).listenPort,
      publicKey: own.backendData.publicKey,
    };
  },
  fixedEntries(ctx): PlannedEntry[] {
    const n = ctx.config.network;
    const dst = formatIp4(n.ip);
    return [{ kind: 'route', key: `${dst}/${n.len}`, entry: { dst, dstLen: n.len, gateway: undefined, oif: 0, onlink: false, type: 'unreachable' } }];
  },
  planPeer(ctx, p): PeerPlan {
    const key = p.backendData.publicKey;
    if (key === ctx.own.backendData.publicKey) return { ok: false, reason: 'duplicate-public-key', detail: `its public key ${key} is ours` };
    const b = wgConfig(ctx.config);
    const dst = formatIp4(p.subnet.ip);
    const peer: WgPeerEntry = {
      publicKey: key,
      endpoint: `${formatIp4(p.publicIp)}:${p.backendData.port}`,
      allowedIps: [formatPrefix4(p.subnet)],
      keepalive: b.keepalive,
      presharedKey: b.psk,
    };
    return {
      ok: true,
      path: 'wireguard',
      entries: [
        { kind: 'wgpeer', key, entry: peer, collision: 'duplicate-public-key' },
        { kind: 'route', key: `${dst}/${p.subnet.len}`, entry: { dst, dstLen: p.subnet.len, gateway: undefined, oif: DEVICE, onlink: false } },
      ],
    };
  },
};
