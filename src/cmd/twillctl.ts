#!/usr/bin/env node
// twillctl: install twill on a host, list the cluster's leases, show the local daemon's state.
// Wiring only: the work is in src/install and src/ctl.
import { parseArgs } from 'node:util';
import { install } from '../install/install';
import { rotateWireguardKey } from '../backends/wireguard/key-store';
import { missingHostTools } from '../install/host-tools';
import { onPath } from '../install/on-path';
import { DEFAULT_ENV_FILE, readEnvFile, setting } from '../ctl/env-file';
import { EtcdUnreachableError } from '../ctl/errors';
import { leaseRows, renderLeases } from '../ctl/leases';
import { fetchStatus, renderStatus } from '../ctl/status';
import { EtcdAdmin } from '../subnet/etcd-registry';
import { subnetsPrefix } from '../subnet/lease';

const USAGE = `Usage: twillctl <command> [flags]

Commands:
  install [--root DIR] [--etcd-endpoints URLS] [--iface IF] [--node PATH]
      Install the programs under DIR/opt/twill (default root: /), the wrappers
      /usr/local/bin/twilld and twillctl, the CNI plugin /opt/cni/bin/twill (native front-end)
      and /opt/twill/libexec/twill-cni (the Node plugin), the conflist
      /etc/cni/net.d/10-twill.conflist, the units twilld.service and twill-cni.service in
      /etc/systemd/system and the settings /etc/twill/twilld.env. --etcd-endpoints and --iface
      go into a new settings file; an existing settings file or conflist is kept as it is. Does
      not start anything: run
      \`systemctl daemon-reload && systemctl enable --now twilld twill-cni\` afterwards.
  leases [--etcd-endpoints URLS] [--etcd-prefix PATH] [--etcd-cafile F --etcd-certfile F --etcd-keyfile F] [--json]
      The cluster's subnet leases: subnet, public IP, VTEP MAC, time left on the etcd lease.
  status [--http-addr ADDR] [--json]
      Readiness and key metrics of the twilld on this host. Exit status 0 when ready, 1 when not.
  rotate-wireguard-key [--state-dir DIR]
      A new WireGuard private key in DIR/wireguard-private-key (default /var/lib/twill; 0600)
      and its public key printed. Restart twilld to publish it (\`systemctl restart twilld\`):
      it rewrites its lease, every peer switches within a second, and wireguard-go keeps
      running across the restart.

Flags not given are taken from TWILLD_* in the environment, then from ${DEFAULT_ENV_FILE}
(or --env-file FILE), as twilld does.
`;

class UsageError extends Error {
  readonly code = 'ERR_USAGE' as const;
}

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>) {
  try {
    return parseArgs({ args: argv, options: { ...options, 'env-file': { type: 'string' }, help: { type: 'boolean' } }, strict: true, allowPositionals: false })
      .values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

async function cmdInstall(argv: string[]): Promise<number> {
  const v = parse(argv, { root: { type: 'string' }, 'etcd-endpoints': { type: 'string' }, iface: { type: 'string' }, node: { type: 'string' } });
  const endpoints = str(v['etcd-endpoints']);
  const iface = str(v['iface']);
  const nodePath = str(v['node']);
  const r = await install({
    root: str(v['root']) ?? '/',
    ...(endpoints !== undefined ? { etcdEndpoints: endpoints } : {}),
    ...(iface !== undefined ? { iface } : {}),
    ...(nodePath !== undefined ? { nodePath } : {}),
  });
  const out = process.stdout;
  out.write(`installed twill into ${r.root} (release ${r.release})\n`);
  for (const p of r.written) out.write(`  wrote  ${p}\n`);
  for (const p of r.kept) out.write(`  kept   ${p} (already present; not overwritten)\n`);
  for (const p of r.pruned) out.write(`  pruned ${p}\n`);
  for (const line of missingHostTools(onPath)) out.write(`note: ${line}\n`);
  if (r.kept.length > 0 && (endpoints !== undefined || iface !== undefined)) {
    out.write('note: --etcd-endpoints/--iface only seed a new settings file; edit the kept one to change them\n');
  }
  return 0;
}

async function cmdLeases(argv: string[]): Promise<number> {
  const v = parse(argv, {
    'etcd-endpoints': { type: 'string' },
    'etcd-prefix': { type: 'string' },
    'etcd-cafile': { type: 'string' },
    'etcd-certfile': { type: 'string' },
    'etcd-keyfile': { type: 'string' },
    json: { type: 'boolean' },
  });
  const fileEnv = readEnvFile(str(v['env-file']) ?? DEFAULT_ENV_FILE);
  const endpoints = setting(str(v['etcd-endpoints']), 'TWILLD_ETCD_ENDPOINTS', fileEnv, 'http://127.0.0.1:2379')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const prefix = setting(str(v['etcd-prefix']), 'TWILLD_ETCD_PREFIX', fileEnv, '/coreos.com/network').replace(/\/+$/, '');
  const tls = {
    caFile: setting(str(v['etcd-cafile']), 'TWILLD_ETCD_CAFILE', fileEnv, ''),
    certFile: setting(str(v['etcd-certfile']), 'TWILLD_ETCD_CERTFILE', fileEnv, ''),
    keyFile: setting(str(v['etcd-keyfile']), 'TWILLD_ETCD_KEYFILE', fileEnv, ''),
  };
  const admin = await EtcdAdmin.connect(endpoints, tls.caFile || tls.certFile ? tls : undefined);
  try {
    let entries;
    try {
      entries = await admin.listWithTtl(subnetsPrefix(prefix));
    } catch (err) {
      throw new EtcdUnreachableError(endpoints, err);
    }
    const rows = leaseRows(prefix, entries);
    process.stdout.write(v['json'] ? JSON.stringify(rows, null, 2) + '\n' : renderLeases(rows));
  } finally {
    admin.close();
  }
  return 0;
}

async function cmdStatus(argv: string[]): Promise<number> {
  const v = parse(argv, { 'http-addr': { type: 'string' }, json: { type: 'boolean' } });
  const fileEnv = readEnvFile(str(v['env-file']) ?? DEFAULT_ENV_FILE);
  const addr = setting(str(v['http-addr']), 'TWILLD_HTTP_ADDR', fileEnv, '127.0.0.1:9464');
  const s = await fetchStatus(addr);
  process.stdout.write(v['json'] ? JSON.stringify(s, null, 2) + '\n' : renderStatus(addr, s));
  return s.ready ? 0 : 1;
}

async function cmdRotateWireguardKey(argv: string[]): Promise<number> {
  const v = parse(argv, { 'state-dir': { type: 'string' } });
  const fileEnv = readEnvFile(str(v['env-file']) ?? DEFAULT_ENV_FILE);
  const dir = setting(str(v['state-dir']), 'TWILLD_STATE_DIR', fileEnv, '/var/lib/twill');
  const publicKey = await rotateWireguardKey(dir);
  process.stdout.write(`new WireGuard public key ${publicKey}\nrestart twilld to publish it: systemctl restart twilld\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h' || rest.includes('--help')) {
    process.stdout.write(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  switch (cmd) {
    case 'install':
      return cmdInstall(rest);
    case 'leases':
      return cmdLeases(rest);
    case 'status':
      return cmdStatus(rest);
    case 'rotate-wireguard-key':
      return cmdRotateWireguardKey(rest);
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error & { code?: string }) => {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    process.stderr.write(`twillctl: ${err.message}${cause}${err.code ? ` [${err.code}]` : ''}\n`);
    if (err instanceof UsageError) process.stderr.write("Run 'twillctl --help' for usage.\n");
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
