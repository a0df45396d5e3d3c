// `auto` asks the kernel for the generic netlink family "wireguard" (loading the module when it
// may). The oracle: /sys/module/wireguard exists afterwards exactly when the kernel has it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { kernelWireguardProbe } from '../../src/backends/wireguard/kernel-driver';
import { GenlSocket, resolveFamily } from '../../src/netlink/genl-socket';
import { wireguardDriver } from '../../src/backends/wireguard/drivers';

test('the kernel is asked whether it has WireGuard; the driver follows, logged with why', () => {
  const probe = kernelWireguardProbe();
  const hasModule = fs.existsSync('/sys/module/wireguard');
  assert.equal(probe.ok, hasModule, probe.reason);
  if (!hasModule) assert.equal(probe.reason, 'ENOENT');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-wgprobe-'));
  try {
    const opts = { stateDir: dir, privateKey: () => Buffer.alloc(32, 1), log: { info: () => undefined, warn: () => undefined } };
    for (const mode of ['kernel', 'auto'] as const) {
      const c = wireguardDriver(mode, opts);
      c.driver.stop?.();
      assert.equal(c.mode, hasModule ? 'kernel' : 'userspace');
      assert.match(c.reason, hasModule ? /the kernel has WireGuard/ : /the kernel has no WireGuard \(ENOENT\); wireguard-go/);
    }
    const u = wireguardDriver('userspace', opts, () => ({ ok: true, reason: 'never asked' }));
    u.driver.stop?.();
    assert.equal(u.mode, 'userspace');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('family resolution over the driver\'s generic netlink socket agrees with `genl ctrl get`', () => {
  const sock = GenlSocket.open('wireguard');
  try {
    for (const name of ['nlctrl', 'thermal']) {
      const oracle = /ID: (0x[0-9a-f]+)/.exec(spawnSync('genl', ['ctrl', 'get', 'name', name], { encoding: 'utf8' }).stdout)?.[1];
      if (oracle === undefined) continue;
      assert.equal(resolveFamily(sock, name), Number(oracle), name);
    }
    assert.throws(() => resolveFamily(sock, 'twillnofamily'), (e: unknown) => (e as { errnoName?: string }).errnoName === 'ENOENT');
  } finally {
    sock.close();
  }
});
