#!/usr/bin/env node
// twillctl: install twill on a host, list the cluster's leases, show the local daemon's state.
// Wiring only: the work is in src/install and src/ctl.
import { parseArgs } from 'node:util';
import { install } from '../install/install';
import { ownEnvFile, readEnvFile, setting } from '../ctl/env-file';
import { EtcdUnreachableError } from '../ctl/errors';
import { leaseRows, renderLeases } from '../ctl/leases';
import { fetchStatus, renderStatus, StatusUnreachableError, unreachableJson } from '../ctl/status';
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
  leases [--etcd-endpoints URLS] [--etcd-prefix PATH] [--etcd-cafile F --etcd-certfile F --etcd-keyfile F] [--timeout S] [--json]
      The cluster's subnet leases: subnet, public IP, VTEP MAC, time left on the etcd lease.
      Gives up after --timeout seconds (default 10) without an answer.
  status [--http-addr ADDR] [--json]
      Readiness and key metrics of the twilld on this host. Exit status 0 when ready, 1 when not.

Flags not given are taken from TWILLD_* in the environment, then from ${ownEnvFile()}
(or --settings FILE; --env-file FILE too, except on Node.js 20, which takes --env-file anywhere
on its command line for itself), as twilld does. twillctl --version prints the version.
`;

class UsageError extends Error {
  readonly code = 'ERR_USAGE' as const;
}

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>) {
  try {
    return parseArgs({ args: argv, options: { ...options, 'env-file': { type: 'string' }, settings: { type: 'string' }, help: { type: 'boolean' } }, strict: true, allowPositionals: false })
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
  const root = str(v['root']) ?? '/';
  const r = await install({
    root,
    onWait: (pid) => process.stderr.write(`twillctl: waiting for the install by pid ${pid ?? '?'} into ${root} to finish\n`),
    ...(endpoints !== undefined ? { etcdEndpoints: endpoints } : {}),
    ...(iface !== undefined ? { iface } : {}),
    ...(nodePath !== undefined ? { nodePath } : {}),
  });
  const out = process.stdout;
  out.write(`installed twill into ${r.root} (release ${r.release})\n`);
  for (const p of r.written) out.write(`  wrote  ${p}\n`);
  for (const p of r.kept) out.write(`  kept   ${p} (already present; not overwritten)\n`);
  for (const p of r.pruned) out.write(`  pruned ${p}\n`);
  if (r.kept.length > 0 && (endpoints !== undefined || iface !== undefined)) {
    out.write('note: --etcd-endpoints/--iface only seed a new settings file; edit the kept one to change them\n');
  }
  const under = root === '/' ? '' : ` (units under ${r.root}: copy or link them into the host's /etc/systemd/system first)`;
  out.write(`next: systemctl daemon-reload && systemctl enable --now twilld twill-cni   (after an upgrade: systemctl restart twilld twill-cni)${under}\n`);
  return 0;
}

async function cmdLeases(argv: string[]): Promise<number> {
  const v = parse(argv, {
    'etcd-endpoints': { type: 'string' },
    'etcd-prefix': { type: 'string' },
    'etcd-cafile': { type: 'string' },
    'etcd-certfile': { type: 'string' },
    'etcd-keyfile': { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
  });
  const timeoutS = Number(str(v['timeout']) ?? LEASES_DEADLINE_S);
  if (!(timeoutS > 0 && timeoutS <= 3600)) throw new UsageError('--timeout must be a number of seconds from 0 to 3600');
  const fileEnv = readEnvFile(str(v['settings']) ?? str(v['env-file']) ?? ownEnvFile());
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
      // The client retries a failed call up to 3 times (10 s each): one deadline for the lot.
      entries = await withDeadline(admin.listWithTtl(subnetsPrefix(prefix)), timeoutS * 1000);
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

const LEASES_DEADLINE_S = 10;

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function cmdStatus(argv: string[]): Promise<number> {
  const v = parse(argv, { 'http-addr': { type: 'string' }, json: { type: 'boolean' } });
  const fileEnv = readEnvFile(str(v['settings']) ?? str(v['env-file']) ?? ownEnvFile());
  const addr = setting(str(v['http-addr']), 'TWILLD_HTTP_ADDR', fileEnv, '127.0.0.1:9464');
  let s;
  try {
    s = await fetchStatus(addr);
  } catch (err) {
    // --json prints JSON whatever happens (no daemon, an unusable --http-addr): scripts parse stdout.
    if (!v['json'] || !(err instanceof Error)) throw err;
    process.stdout.write(unreachableJson(addr, err));
    process.stderr.write(`twillctl: ${err.message}\n`);
    return 1;
  }
  process.stdout.write(v['json'] ? JSON.stringify(s, null, 2) + '\n' : renderStatus(addr, s));
  return s.ready ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === 'version') {
    process.stdout.write(`twillctl ${(require('../../../package.json') as { version: string }).version}\n`);
    return 0;
  }
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
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error & { code?: string }) => {
    // These two say their cause in their message already.
    const told = err instanceof EtcdUnreachableError || err instanceof StatusUnreachableError;
    const cause = !told && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    process.stderr.write(`twillctl: ${err.message}${cause}${err.code ? ` [${err.code}]` : ''}\n`);
    if (err instanceof UsageError) process.stderr.write("Run 'twillctl --help' for usage.\n");
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
