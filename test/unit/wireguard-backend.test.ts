import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { computeDesired } from '../../src/backends/plan';
import { WIREGUARD_OVERHEAD, wireguardBackend } from '../../src/backends/wireguard/backend';
import { wireguardCodec, type WireguardData } from '../../src/backends/wireguard/codec';
import { decodeKey, generatePrivateKey, publicKeyOf } from '../../src/backends/wireguard/key';
import { loadOrCreateWireguardKey, rotateWireguardKey, WIREGUARD_KEY_FILE } from '../../src/backends/wireguard/key-store';
import { formatNetworkConfig, NetworkConfigError, parseNetworkConfig } from '../../src/config/network';
import { DEVICE } from '../../src/dataplane/model';
import { parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import { decodeLease, type Lease } from '../../src/subnet/lease';

const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}');
const underlay = { index: 3, ip: '192.168.50.11', mtu: 1500 };
// Keys made by wireguard-tools, the independent oracle.
const wgKey = (): string => execFileSync('wg', ['genkey'], { encoding: 'utf8' }).trim();
const wgPub = (priv: string): string => execFileSync('wg', ['pubkey'], { input: `${priv}\n`, encoding: 'utf8' }).trim();
const K1 = wgPub(wgKey());
const K2 = wgPub(wgKey());
const K3 = wgPub(wgKey());

function lease(subnet: string, ip: string, publicKey: string, port = 51820): Lease<WireguardData> {
  return { subnet: parsePrefix4(subnet), publicIp: parseIp4(ip), publicIpv6: null, backendType: 'wireguard', backendData: { publicKey, port } };
}
const own = lease('10.244.1.0/24', '192.168.50.11', K1);

test('network config: flannel\'s wireguard keys and defaults', () => {
  assert.deepEqual(config.backend, { type: 'wireguard', listenPort: 51820, psk: undefined, keepalive: 0, mode: 'separate' });
  const psk = wgKey();
  const c = parseNetworkConfig(`{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","ListenPort":51999,"PSK":"${psk}","PersistentKeepaliveInterval":25,"Mode":"auto","ListenPortV6":51821}}`);
  assert.deepEqual(c.backend, { type: 'wireguard', listenPort: 51999, psk, keepalive: 25, mode: 'auto' });
  assert.deepEqual(parseNetworkConfig(formatNetworkConfig(c)).backend, c.backend);
  for (const bad of ['"Mode":"ipv6"', '"PSK":"short"', '"ListenPort":70000', '"PersistentKeepaliveInterval":-1']) {
    assert.throws(() => parseNetworkConfig(`{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard",${bad}}}`), NetworkConfigError, bad);
  }
});

test('keys: X25519 public keys agree with `wg pubkey`; 32 bytes or nothing', () => {
  const priv = wgKey();
  assert.equal(publicKeyOf(decodeKey(priv)!).toString('base64'), wgPub(priv));
  const mine = generatePrivateKey();
  assert.equal(mine.length, 32);
  assert.equal(publicKeyOf(mine).toString('base64'), wgPub(mine.toString('base64')));
  for (const bad of [undefined, 42, '', 'AAAA', `${K1}A`, K1.slice(0, 43), Buffer.alloc(31).toString('base64'), Buffer.alloc(33).toString('base64')]) {
    assert.equal(decodeKey(bad), null, String(bad));
  }
});

test('lease codec: flannel\'s JSON (no Port: the config\'s ListenPort) and twill\'s', () => {
  const opts = { prefix: '/coreos.com/network', config, own, codec: wireguardCodec };
  const flannel = `{"PublicIP":"192.168.50.12","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"${K2}"}}`;
  const a = decodeLease('/coreos.com/network/subnets/10.244.2.0-24', flannel, opts);
  assert.ok(a.ok);
  assert.deepEqual(a.lease.backendData, { publicKey: K2, port: 51820 });
  const twill = `{"PublicIP":"192.168.50.13","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"${K3}","Port":51999}}`;
  const b = decodeLease('/coreos.com/network/subnets/10.244.3.0-24', twill, opts);
  assert.ok(b.ok);
  assert.deepEqual(b.lease.backendData, { publicKey: K3, port: 51999 });
  assert.deepEqual(wireguardCodec.decodeCanonical(JSON.stringify(wireguardCodec.encode(b.lease.backendData)), config), b.lease.backendData);
  const bad = decodeLease('/coreos.com/network/subnets/10.244.4.0-24', '{"PublicIP":"192.168.50.14","BackendType":"wireguard","BackendData":{"PublicKey":"bm90IGEga2V5"}}', opts);
  assert.deepEqual(bad.ok ? null : bad.reason, 'bad-key');
  const port = decodeLease('/coreos.com/network/subnets/10.244.5.0-24', `{"PublicIP":"192.168.50.15","BackendType":"wireguard","BackendData":{"PublicKey":"${K2}","Port":0}}`, opts);
  assert.deepEqual(port.ok ? null : port.reason, 'bad-port');
  const vx = decodeLease('/coreos.com/network/subnets/10.244.6.0-24', '{"PublicIP":"192.168.50.16","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:06"}}', opts);
  assert.deepEqual(vx.ok ? null : vx.reason, 'wrong-backend');
});

test('plan: per peer a WireGuard peer and a route on the device; once, the unreachable cluster route; MTU = underlay - 60', () => {
  const peers = [lease('10.244.2.0/24', '192.168.50.12', K2), lease('10.244.3.0/24', '192.168.50.13', K3, 51999), lease('10.244.4.0/24', '192.168.50.14', K2)];
  const { desired, conflicts, paths } = computeDesired(wireguardBackend, { config, own, ownHeld: true, peers, underlay, identity: { vtepMac: '', wireguardDevice: 'twill-wg-h1' } });
  assert.deepEqual(desired.device, { name: 'twill-wg-h1', mtu: 1440, address: '10.244.1.0', listenPort: 51820, publicKey: K1 });
  assert.equal(wireguardBackend.podMtu(config, 1500), 1500 - WIREGUARD_OVERHEAD);
  assert.deepEqual([...desired.tables.wgpeer!.values()], [
    { publicKey: K2, endpoint: '192.168.50.12:51820', allowedIps: ['10.244.2.0/24'], keepalive: 0, presharedKey: undefined },
    { publicKey: K3, endpoint: '192.168.50.13:51999', allowedIps: ['10.244.3.0/24'], keepalive: 0, presharedKey: undefined },
  ]);
  assert.deepEqual(Object.fromEntries(desired.tables.route!), {
    '10.244.0.0/16': { dst: '10.244.0.0', dstLen: 16, gateway: undefined, oif: 0, onlink: false, type: 'unreachable' },
    '10.244.2.0/24': { dst: '10.244.2.0', dstLen: 24, gateway: undefined, oif: DEVICE, onlink: false },
    '10.244.3.0/24': { dst: '10.244.3.0', dstLen: 24, gateway: undefined, oif: DEVICE, onlink: false },
  });
  // A second lease with a key already taken is not programmed.
  assert.deepEqual(conflicts.map((c) => c.reason), ['duplicate-public-key']);
  assert.equal(paths.get('wireguard'), 2);
  // Our own key in a peer's lease: not programmed either.
  const mine = computeDesired(wireguardBackend, { config, own, ownHeld: false, peers: [lease('10.244.9.0/24', '192.168.50.19', K1)], underlay });
  assert.deepEqual(mine.conflicts.map((c) => c.reason), ['duplicate-public-key']);
  assert.equal((mine.desired.device as { address: unknown }).address, undefined);
  assert.equal((mine.desired.device as { name: string }).name, 'twill-wg');
});

test('key store: made once at 0600, reused, rotated, a corrupt file replaced', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-wgkey-'));
  try {
    const a = await loadOrCreateWireguardKey(dir);
    assert.equal(a.created, true);
    const file = path.join(dir, WIREGUARD_KEY_FILE);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(wgPub(fs.readFileSync(file, 'utf8').trim()), a.publicKey);
    const b = await loadOrCreateWireguardKey(dir);
    assert.deepEqual([b.created, b.publicKey, b.privateKey.equals(a.privateKey)], [false, a.publicKey, true]);
    const rotated = await rotateWireguardKey(dir);
    assert.notEqual(rotated, a.publicKey);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal((await loadOrCreateWireguardKey(dir)).publicKey, rotated);
    fs.writeFileSync(file, 'garbage\n');
    const c = await loadOrCreateWireguardKey(dir);
    assert.deepEqual([c.created, c.replacedCorrupt], [true, true]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
