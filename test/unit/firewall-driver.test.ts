// The nftables driver when nft cannot run: the daemon must not stop, the failure is counted
// each time, logged once, and retried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { FirewallDriver } from '../../src/firewall/driver';
import { Nft, NftError } from '../../src/firewall/nft';
import { createLogger } from '../../src/observe/log';
import { enableIpForwarding, ForwardingError } from '../../src/firewall/forwarding';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

test('nft missing: setDesired does not throw, every attempt is a counted failure, one error is logged', async () => {
  const out = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  out.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)));
  const driver = new FirewallDriver(new Nft(undefined, '/nonexistent/nft'), createLogger('info', out), { checkIntervalMs: 60_000, events: false });
  const failures: Error[] = [];
  driver.on('failed', (e) => failures.push(e));
  const spec = { network: '10.244.0.0/16', podSubnet: '10.244.1.0/24', ipMasq: true, vxlan: { port: 8472, peers: new Set(['192.0.2.1']) } };
  driver.setDesired(spec);
  driver.setDesired({ ...spec, vxlan: { port: 8472, peers: new Set(['192.0.2.2']) } });
  assert.equal(failures.length, 2);
  assert.ok(failures[0] instanceof NftError);
  assert.equal((failures[0] as NftError).reason, 'missing');
  assert.match(failures[0]!.message, /apt-get install nftables/);
  assert.equal(lines.filter((l) => l['msg'] === 'cannot write the nftables table; retrying').length, 1);
  await driver.check(); // a check cannot list either: warned, no throw
  driver.stop();
});

test('IPv4 forwarding: turned on when off, left alone when on, a failure is a ForwardingError', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-fwd-'));
  try {
    const f = path.join(dir, 'ip_forward');
    fs.writeFileSync(f, '0\n');
    assert.deepEqual(enableIpForwarding(f), { wasOff: true });
    assert.equal(fs.readFileSync(f, 'utf8'), '1\n');
    assert.deepEqual(enableIpForwarding(f), { wasOff: false });
    assert.throws(() => enableIpForwarding(path.join(dir, 'missing', 'ip_forward')), (e: Error & { code?: string }) => e instanceof ForwardingError && e.code === 'ERR_IP_FORWARD');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
