// The kernel driver's messages, checked byte-wise with an independent attribute walker and
// the numbers of include/uapi/linux/wireguard.h (this kernel has no WireGuard to send them to).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffDevice } from '../../src/backends/wireguard/device-diff';
import { getDeviceMessage, parseDeviceMessage, setDeviceMessage, setDeviceObjects, sockaddrIn, WG_GENL_NAME } from '../../src/backends/wireguard/wg-messages';
import { familyRequest } from '../../src/netlink/genetlink';
import type { WgPeerEntry } from '../../src/dataplane/model';

// wireguard.h
const WGDEVICE_A = { IFNAME: 2, PRIVATE_KEY: 3, LISTEN_PORT: 6, PEERS: 8 };
const WGPEER_A = { PUBLIC_KEY: 1, PRESHARED_KEY: 2, FLAGS: 3, ENDPOINT: 4, KEEPALIVE: 5, ALLOWEDIPS: 9 };
const WGALLOWEDIP_A = { FAMILY: 1, IPADDR: 2, CIDR_MASK: 3 };
const WGPEER_F_REMOVE_ME = 1;
const WGPEER_F_REPLACE_ALLOWEDIPS = 2;

/** type → payloads, from a run of netlink attributes (NLA_F_NESTED and byte-order bits masked). */
function attrs(b: Buffer): Map<number, Buffer[]> {
  const out = new Map<number, Buffer[]>();
  for (let off = 0; off + 4 <= b.length; ) {
    const len = b.readUInt16LE(off);
    const type = b.readUInt16LE(off + 2) & 0x3fff;
    assert.ok(len >= 4 && off + len <= b.length, 'attribute inside its buffer');
    out.set(type, [...(out.get(type) ?? []), b.subarray(off + 4, off + len)]);
    off += (len + 3) & ~3;
  }
  return out;
}
const one = (m: Map<number, Buffer[]>, t: number): Buffer => {
  const v = m.get(t);
  assert.equal(v?.length, 1, `one attribute ${t}`);
  return v![0]!;
};
const nested = (b: Buffer): Buffer[] => [...attrs(b).values()].flat();

const A = Buffer.alloc(32, 0xa1).toString('base64');
const B = Buffer.alloc(32, 0xb2).toString('base64');
const C = Buffer.alloc(32, 0xc3).toString('base64');
const PSK = Buffer.alloc(32, 0x55).toString('base64');
const peer = (publicKey: string, endpoint: string, allowedIps: string[], extra: Partial<WgPeerEntry> = {}): WgPeerEntry => ({ publicKey, endpoint, allowedIps, keepalive: 0, presharedKey: undefined, ...extra });

test('sockaddr_in: family host order, port and address network order', () => {
  assert.equal(sockaddrIn('192.168.50.12:51820').toString('hex'), '0200' + 'ca6c' + 'c0a8320c' + '0000000000000000');
});

test('SET_DEVICE for a desired state: header, key, port, a removed peer, a new peer with endpoint, PSK, keepalive, allowed IPs', () => {
  const actual = { privateKeyHex: undefined, listenPort: 0, peers: new Map([[B, peer(B, '192.168.50.13:51820', ['10.244.3.0/24'])]]) };
  const desired = { privateKeyHex: '11'.repeat(32), listenPort: 51820, peers: new Map([[A, peer(A, '192.168.50.12:51820', ['10.244.2.0/24'], { presharedKey: PSK, keepalive: 25 })]]) };
  const [dev, ...rest] = setDeviceObjects('twill-wg', diffDevice(desired, actual));
  assert.equal(rest.length, 0);
  const msg = setDeviceMessage(0x1d, 7, dev!);
  // nlmsghdr: length, type = family id, NLM_F_REQUEST|NLM_F_ACK, seq; genlmsghdr: cmd 1 (SET), version 1.
  assert.equal(msg.readUInt32LE(0), msg.length);
  assert.deepEqual([msg.readUInt16LE(4), msg.readUInt16LE(6), msg.readUInt32LE(8), msg[16], msg[17]], [0x1d, 5, 7, 1, 1]);
  const top = attrs(msg.subarray(20));
  assert.equal(one(top, WGDEVICE_A.IFNAME).toString(), 'twill-wg\0');
  assert.equal(one(top, WGDEVICE_A.PRIVATE_KEY).toString('hex'), '11'.repeat(32));
  assert.equal(one(top, WGDEVICE_A.LISTEN_PORT).readUInt16LE(0), 51820);
  const peers = nested(one(top, WGDEVICE_A.PEERS)).map(attrs);
  assert.equal(peers.length, 2);
  const [gone, added] = peers as [Map<number, Buffer[]>, Map<number, Buffer[]>];
  assert.equal(one(gone, WGPEER_A.PUBLIC_KEY).toString('base64'), B);
  assert.equal(one(gone, WGPEER_A.FLAGS).readUInt32LE(0), WGPEER_F_REMOVE_ME);
  assert.equal(gone.has(WGPEER_A.ENDPOINT), false);
  assert.equal(one(added, WGPEER_A.PUBLIC_KEY).toString('base64'), A);
  assert.equal(one(added, WGPEER_A.PRESHARED_KEY).toString('base64'), PSK);
  assert.equal(one(added, WGPEER_A.FLAGS).readUInt32LE(0), WGPEER_F_REPLACE_ALLOWEDIPS);
  assert.ok(one(added, WGPEER_A.ENDPOINT).equals(sockaddrIn('192.168.50.12:51820')));
  assert.equal(one(added, WGPEER_A.KEEPALIVE).readUInt16LE(0), 25);
  const ips = nested(one(added, WGPEER_A.ALLOWEDIPS)).map(attrs);
  assert.deepEqual(ips.map((a) => [one(a, WGALLOWEDIP_A.FAMILY).readUInt16LE(0), one(a, WGALLOWEDIP_A.IPADDR).toString('hex'), one(a, WGALLOWEDIP_A.CIDR_MASK)[0]]), [[2, '0af40200', 24]]);
  // The package's decoder reads back what was meant.
  const back = parseDeviceMessage(msg);
  assert.equal(back.ifname, 'twill-wg');
  assert.equal(back.peers?.[1]?.persistentKeepaliveInterval, 25);
});

test('nothing to change: no message; many peers: split, the device key only in the first', () => {
  const same = new Map([[A, peer(A, '192.168.50.12:51820', ['10.244.2.0/24'])]]);
  assert.deepEqual(setDeviceObjects('twill-wg', diffDevice({ privateKeyHex: '11'.repeat(32), listenPort: 51820, peers: same }, { privateKeyHex: '11'.repeat(32), listenPort: 51820, peers: same })), []);
  const many = new Map<string, WgPeerEntry>();
  for (let i = 0; i < 150; i++) {
    const k = Buffer.alloc(32, i + 1).toString('base64');
    many.set(k, peer(k, `192.168.51.${i}:51820`, [`10.245.${i}.0/24`]));
  }
  const devs = setDeviceObjects('twill-wg', diffDevice({ privateKeyHex: '22'.repeat(32), listenPort: 51820, peers: many }, { privateKeyHex: undefined, listenPort: 0, peers: new Map([[C, peer(C, '1.2.3.4:1', ['10.9.9.0/24'])]]) }), 64);
  assert.deepEqual(devs.map((d) => d.peers?.length), [64, 64, 23]);
  assert.deepEqual(devs.map((d) => d.privateKey !== undefined), [true, false, false]);
  assert.equal(devs[0]!.peers![0]!.flags?.removeMe, true);
});

test('GET_DEVICE is a dump by name (cmd 0); the family is asked for by name', () => {
  const get = getDeviceMessage(0x1d, 9, 'twill-wg');
  assert.deepEqual([get.readUInt16LE(4), get.readUInt16LE(6) & 0x300, get[16]], [0x1d, 0x300, 0]);
  assert.equal(one(attrs(get.subarray(20)), WGDEVICE_A.IFNAME).toString(), 'twill-wg\0');
  const fam = familyRequest(1, WG_GENL_NAME);
  // GENL_ID_CTRL, NLM_F_REQUEST|NLM_F_ACK (the answer, then an ACK that ends the exchange), CTRL_CMD_GETFAMILY.
  assert.deepEqual([fam.readUInt16LE(4), fam.readUInt16LE(6), fam[16]], [0x10, 5, 3]);
  assert.equal(one(attrs(fam.subarray(20)), 2).toString(), 'wireguard\0');
});

test('a GET_DEVICE dump in parts (one peer continued in the next) reads back as one device state', async () => {
  const { deviceState, parseDeviceMessage, setDeviceMessage } = await import('../../src/backends/wireguard/wg-messages');
  // Messages as the kernel sends them: formatted with the same encoder, read back from bytes.
  const ip = (a: string, m: number) => ({ family: 2, ipaddr: Buffer.from(a.split('.').map(Number)), cidrMask: m });
  const parts = [
    { ifname: 'twill-wg', privateKey: Buffer.alloc(32, 7), listenPort: 51820, peers: [
      { publicKey: Buffer.from(A, 'base64'), presharedKey: Buffer.alloc(32), endpoint: sockaddrIn('192.168.50.12:51820'), persistentKeepaliveInterval: 0, allowedIps: [ip('10.244.2.0', 24)] },
      { publicKey: Buffer.from(B, 'base64'), presharedKey: Buffer.from(PSK, 'base64'), endpoint: sockaddrIn('192.168.50.13:51999'), persistentKeepaliveInterval: 25, allowedIps: [ip('10.244.3.0', 24)] },
    ] },
    { ifname: 'twill-wg', peers: [{ publicKey: Buffer.from(B, 'base64'), allowedIps: [ip('10.244.30.0', 24)] }] },
  ].map((d) => parseDeviceMessage(setDeviceMessage(0x1d, 1, d)));
  const st = deviceState(parts);
  assert.equal(st.privateKeyHex, '07'.repeat(32));
  assert.equal(st.listenPort, 51820);
  assert.deepEqual([...st.peers.values()], [
    peer(A, '192.168.50.12:51820', ['10.244.2.0/24']),
    peer(B, '192.168.50.13:51999', ['10.244.3.0/24', '10.244.30.0/24'], { keepalive: 25, presharedKey: PSK }),
  ]);
  // Read back, the desired state needs no change.
  assert.deepEqual(diffDevice({ privateKeyHex: '07'.repeat(32), listenPort: 51820, peers: st.peers }, st), { remove: [], upsert: [] });
});
