// One process of the subnet race (test/e2e/faults-race.test.ts): runs `count` contenders, each
// the daemon's real EtcdRegistry with its own PublicIP and VTEP MAC, all calling acquire() at
// the same wall-clock instant. Like twilld, a contender that loses too many races in a row
// (ERR_LEASE_CONFLICT) tries again; out of subnets (ERR_OUT_OF_SUBNETS) is final.
// argv[2]: JSON {endpoint, prefix, first, count, startAt}. Prints one JSON line per contender.
import { vxlanCodec } from '../../src/backends/vxlan/codec';
import { vxlanBackend } from '../../src/backends/vxlan/backend';
import { parseNetworkConfig } from '../../src/config/network';
import { EtcdRegistry } from '../../src/subnet/etcd-registry';
import { formatPrefix4 } from '../../src/ip/ipv4';

interface Args {
  endpoint: string;
  prefix: string;
  first: number;
  count: number;
  startAt: number;
}

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] ?? '{}') as Args;
  const regs = Array.from({ length: a.count }, () => EtcdRegistry.create({ endpoints: [a.endpoint], prefix: a.prefix }, quiet));
  const config = parseNetworkConfig((await regs[0]!.getConfigText()) ?? '');
  // Warm every client up (connection established) so the race starts at the same instant.
  await Promise.all(regs.map((r) => r.getConfigText()));
  await new Promise((r) => setTimeout(r, Math.max(0, a.startAt - Date.now())));
  const results = await Promise.all(
    regs.map(async (reg, i) => {
      const n = a.first + i;
      const publicIp = ((10 << 24) | (99 << 16) | (Math.floor(n / 250) << 8) | ((n % 250) + 1)) >>> 0;
      const vtepMac = `0e:99:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
      let conflicts = 0;
      const t0 = performance.now();
      for (;;) {
        try {
          const lease = await reg.acquire({ config, publicIp, codec: vxlanCodec, backendData: vxlanBackend.ownData({ config, vtepMac }), ttlSeconds: 600, renewMarginSeconds: 60 });
          return { n, ok: true, subnet: formatPrefix4(lease.subnet), publicIp: n, conflicts, ms: performance.now() - t0 };
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'unknown';
          if (code === 'ERR_LEASE_CONFLICT' && conflicts < 20) {
            conflicts++;
            continue;
          }
          return { n, ok: false, code, message: (err as Error).message, conflicts, ms: performance.now() - t0 };
        }
      }
    }),
  );
  for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`);
  await Promise.all(regs.map((r) => r.close()));
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ fatal: String((err as Error)?.stack ?? err) })}\n`);
  process.exitCode = 1;
});
