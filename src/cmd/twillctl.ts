#!/usr/bin/env node
// twillctl: install twill on a host, list the cluster's leases, show the local daemon's state.
// Wiring only: the work is in src/install and src/ctl.
import { parseArgs } from 'node:util';
import { install } from '../install/install';
import { rotateWireguardKey } from '../backends/wireguard/key-store';
import { missingHostTools } from '../install/host-tools';
import { onPath } from '../install/on-path';
import { ownEnvFile, readEnvFile, setting } from '../ctl/env-file';
import { ETCD_FLAGS, etcdSettings } from '../ctl/etcd-settings';
import { gatherCheck, renderCheck } from '../ctl/check';
import { gatherTrace } from '../ctl/trace';
import { renderTrace, traceHops } from '../ctl/trace-plan';
import { checkExitCode } from '../probe/cluster-view';
import { EtcdUnreachableError } from '../ctl/errors';
import { leaseRows, renderLeases } from '../ctl/leases';
import { fetchStatus, renderStatus, StatusUnreachableError, unreachableJson } from '../ctl/status';
import { fetchPeers, renderPeers } from '../ctl/peers';
import { EtcdAdmin } from '../subnet/etcd-admin';
import { subnetsPrefix } from '../subnet/lease';
import { TwillError } from '../base/twill-error';

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
  check [etcd flags as for leases] [--timeout S] [--json]
      The cluster's health as every host's peer probes see it: which hosts cannot reach which
      (unreachable) or reach them only with small packets (mtu), and the likely culprit.
      Exit status 0 when every path is healthy, 1 when one is broken, 3 when the view is
      incomplete (a host not reporting, or peers not judged yet).
  trace <src pod IP> <dst pod IP> [etcd flags] [--probe-port PORT] [--timeout S] [--json]
      Run on the source pod's host: the path hop by hop as this host's kernel answers (route,
      device, neighbour, FDB, underlay route), each compared with what the leases say, then
      probed over the overlay and the underlay (small and full size, DF). Exit status 1 at
      the first broken hop.
  status [--http-addr ADDR] [--json] [--peers]
      Readiness and key metrics of the twilld on this host. Exit status 0 when ready, 1 when not.
      --peers: instead, every peer as this host's probes see it (status, round trip, full-MTU
      path, last answer); exit status 0 when every peer is ok.
  rotate-wireguard-key [--state-dir DIR]
      A new WireGuard private key in DIR/wireguard-private-key (default /var/lib/twill; 0600)
      and its public key printed. Restart twilld to publish it (\`systemctl restart twilld\`):
      it rewrites its lease, every peer switches within a second, and wireguard-go keeps
      running across the restart.

Flags not given are taken from TWILLD_* in the environment, then from ${ownEnvFile()}
(or --settings FILE; --env-file FILE too, except on Node.js 20, which takes --env-file anywhere
on its command line for itself), as twilld does. twillctl --version prints the version.
`;

class UsageError extends TwillError<'ERR_USAGE'> {
  constructor(message: string) {
    super('ERR_USAGE', message);
    this.name = 'UsageError';
  }
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
  for (const w of r.warnings) out.write(`warning: ${w}\n`);
  for (const line of missingHostTools(onPath)) out.write(`note: ${line}\n`);
  if (r.kept.length > 0 && (endpoints !== undefined || iface !== undefined)) {
    out.write('note: --etcd-endpoints/--iface only seed a new settings file; edit the kept one to change them\n');
  }
  const under = root === '/' ? '' : ` (units under ${r.root}: copy or link them into the host's /etc/systemd/system first)`;
  out.write(`next: systemctl daemon-reload && systemctl enable --now twilld twill-cni   (after an upgrade: systemctl restart twilld twill-cni)${under}\n`);
  return 0;
}

/** Settings file: --settings, then --env-file, then this install's own. */
function fileEnvOf(v: Record<string, string | boolean | undefined>): Record<string, string> {
  return readEnvFile(str(v['settings']) ?? str(v['env-file']) ?? ownEnvFile());
}

/**
 * Runs `fn` with an etcd connection made from the flags / TWILLD_* / the settings file. Every
 * etcd read goes through `read`: one deadline (--timeout) for the lot, since the client retries
 * a failed call up to 3 times (10 s each); a failed read names the endpoints and the cause.
 */
async function withEtcd<T>(v: Record<string, string | boolean | undefined>, fn: (admin: EtcdAdmin, prefix: string, read: <R>(p: Promise<R>) => Promise<R>) => Promise<T>): Promise<T> {
  const timeoutS = Number(str(v['timeout']) ?? ETCD_DEADLINE_S);
  if (!(timeoutS > 0 && timeoutS <= 3600)) throw new UsageError('--timeout must be a number of seconds from 0 to 3600');
  const { endpoints, prefix, tls } = etcdSettings(v, fileEnvOf(v));
  const admin = await EtcdAdmin.connect(endpoints, tls);
  const read = <R>(p: Promise<R>): Promise<R> =>
    withDeadline(p, timeoutS * 1000).catch((err: unknown) => {
      throw new EtcdUnreachableError(endpoints, err);
    });
  try {
    return await fn(admin, prefix, read);
  } finally {
    admin.close();
  }
}

async function cmdLeases(argv: string[]): Promise<number> {
  const v = parse(argv, { ...ETCD_FLAGS, timeout: { type: 'string' }, json: { type: 'boolean' } });
  return withEtcd(v, async (admin, prefix, read) => {
    const rows = leaseRows(prefix, await read(admin.listWithTtl(subnetsPrefix(prefix))));
    process.stdout.write(v['json'] ? JSON.stringify(rows, null, 2) + '\n' : renderLeases(rows));
    return 0;
  });
}

async function cmdCheck(argv: string[]): Promise<number> {
  const v = parse(argv, { ...ETCD_FLAGS, timeout: { type: 'string' }, json: { type: 'boolean' } });
  return withEtcd(v, async (admin, prefix, read) => {
    const nowS = Math.floor(Date.now() / 1000);
    const report = await read(gatherCheck(admin, prefix, nowS));
    process.stdout.write(v['json'] ? JSON.stringify(report, null, 2) + '\n' : renderCheck(report, nowS));
    return checkExitCode(report);
  });
}

async function cmdTrace(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...ETCD_FLAGS, 'probe-port': { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean' }, 'env-file': { type: 'string' }, settings: { type: 'string' } }, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (parsed.positionals.length !== 2) throw new UsageError('trace needs two pod IP addresses: twillctl trace <src> <dst>');
  const [src, dst] = parsed.positionals as [string, string];
  const port = Number(setting(str(v['probe-port']), 'TWILLD_PROBE_PORT', fileEnvOf(v), '8475'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--probe-port: not a port: ${port}`);
  return withEtcd(v, async (admin, prefix) => {
    const facts = await gatherTrace(admin, prefix, src, dst, port);
    const hops = traceHops(facts);
    process.stdout.write(v['json'] ? JSON.stringify({ src, dst, from: facts.own.name, to: facts.peer?.name ?? null, hops }, null, 2) + '\n' : renderTrace(facts, hops));
    return hops.every((h) => h.ok) ? 0 : 1;
  });
}

const ETCD_DEADLINE_S = 10;

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function cmdStatus(argv: string[]): Promise<number> {
  const v = parse(argv, { 'http-addr': { type: 'string' }, json: { type: 'boolean' }, peers: { type: 'boolean' } });
  const addr = setting(str(v['http-addr']), 'TWILLD_HTTP_ADDR', fileEnvOf(v), '127.0.0.1:9464');
  if (v['peers']) {
    const rows = await fetchPeers(addr);
    process.stdout.write(v['json'] ? JSON.stringify(rows, null, 2) + '\n' : renderPeers(rows, Date.now() / 1000));
    return rows.every((r) => r.status === 'ok') ? 0 : 1;
  }
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

async function cmdRotateWireguardKey(argv: string[]): Promise<number> {
  const v = parse(argv, { 'state-dir': { type: 'string' } });
  const dir = setting(str(v['state-dir']), 'TWILLD_STATE_DIR', fileEnvOf(v), '/var/lib/twill');
  const publicKey = await rotateWireguardKey(dir);
  process.stdout.write(`new WireGuard public key ${publicKey}\nrestart twilld to publish it: systemctl restart twilld\n`);
  return 0;
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
    case 'check':
      return cmdCheck(rest);
    case 'trace':
      return cmdTrace(rest);
    case 'rotate-wireguard-key':
      return cmdRotateWireguardKey(rest);
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
