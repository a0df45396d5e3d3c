#!/usr/bin/env node
// twill-lab: the one-machine lab (hosts as network namespaces, etcd, a twilld per host, pods
// wired by the CNI plugin). Wiring only: the work is in src/lab/operations.ts.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { LabError } from '../lab/errors';
import { labDown, labExec, labReport, labUp, loadLab, type LabLocation } from '../lab/operations';
import { renderReport, reportOk } from '../lab/report';
import { TwillError } from '../base/twill-error';
import { LAB_BACKENDS, type LabBackend } from '../lab/lab';

const USAGE = `Usage: twill-lab <command> [--name NAME] [--dir DIR]

Commands:
  up [--hosts N] [--pods M]   Create (or repair) the lab: N hosts (default 3, or as many as the
                              existing lab has), M pods per host (default 2, or as the lab has);
                              print hosts, pods and the pod×pod connectivity matrix. Exit
                              status 1 when any pair cannot reach the other.
     [--backend vxlan|host-gw|wireguard] [--direct-routing] [--routed K]
                              The network config's backend (default vxlan, or what the lab
                              has; changing it on a running lab restarts the daemons);
                              --direct-routing: vxlan with DirectRouting; --routed K: the last
                              K hosts sit on a second underlay segment behind a router namespace.
  status                      Print the same tables for the running lab (probes again).
  exec <host|pod> -- CMD...   Run CMD inside that host's or pod's network namespace
                              ("underlay" is the namespace of the bridge and etcd,
                              "outside" a namespace beyond the cluster at 172.30.0.250).
  down                        Remove everything the lab created: its processes (by recorded
                              PID), namespaces and files. It never stops at the first error:
                              what it cannot remove is listed with the command that removes
                              it, and the exit status is 1.

--name NAME   the lab's name, 1-10 lowercase letters/digits (default: lab); several labs can
              run side by side. --dir DIR   its state directory (default: /run/twill-lab/NAME).
Needs root, etcd (/usr/bin/etcd) and a build (npm ci && npm run build).
`;

class UsageError extends TwillError<'ERR_USAGE'> {
  constructor(message: string) {
    super('ERR_USAGE', message);
    this.name = 'UsageError';
  }
}

/** How the user invoked us, for the hints printed after the tables. */
function cmdPrefix(loc: LabLocation): string {
  const script = process.argv[1] ?? '';
  const base = script.endsWith('.js') ? `node ${path.relative(process.cwd(), script) || script}` : 'twill-lab';
  return `${base}${loc.name !== 'lab' ? ` --name ${loc.name}` : ''}${loc.dir ? ` --dir ${loc.dir}` : ''}`;
}

function count(v: string | undefined, flag: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new UsageError(`--${flag} must be a whole number from 1 to ${max}`);
  return Number(v);
}

async function main(argv: string[]): Promise<number> {
  // Everything after `--` belongs to the command `exec` runs.
  const dashdash = argv.indexOf('--');
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const rest = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      options: {
        name: { type: 'string' }, dir: { type: 'string' }, hosts: { type: 'string' }, pods: { type: 'string' },
        backend: { type: 'string' }, 'direct-routing': { type: 'boolean' }, routed: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [cmd, ...args] = positionals;
  if (values.help || cmd === undefined || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd === undefined && !values.help ? 2 : 0;
  }
  const loc: LabLocation = { name: values.name ?? 'lab', ...(values.dir !== undefined ? { dir: values.dir } : {}) };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new LabError('ERR_LAB_PREREQ', `twill-lab ${cmd} needs root: it enters the lab's network namespaces (run it with sudo)`);
  }
  const upOnly = [values.hosts, values.pods, values.backend, values['direct-routing'], values.routed];
  if (cmd !== 'up' && upOnly.some((v) => v !== undefined)) throw new UsageError('--hosts, --pods, --backend, --direct-routing and --routed belong to `up`');
  if (cmd !== 'exec' && (args.length > 0 || dashdash >= 0)) throw new UsageError(`unexpected arguments for ${cmd}: ${[...args, ...rest].join(' ')}`);

  switch (cmd) {
    case 'up': {
      const hosts = count(values.hosts, 'hosts', 200);
      const pods = count(values.pods, 'pods', 50);
      const given = values.backend ?? (values['direct-routing'] ? 'vxlan' : undefined);
      if (given !== undefined && !LAB_BACKENDS.includes(given as LabBackend)) throw new UsageError(`--backend must be one of ${LAB_BACKENDS.join(', ')}`);
      const backend = given as LabBackend | undefined;
      if (values['direct-routing'] && backend !== 'vxlan') throw new UsageError('--direct-routing is a vxlan option');
      const routed = values.routed === undefined ? 0 : count(values.routed, 'routed', hosts ?? 200)!;
      const chosen = backend !== undefined ? { backend, directRouting: values['direct-routing'] === true } : {};
      let up;
      try {
        up = await labUp({ ...loc, ...(hosts !== undefined ? { hosts } : {}), ...(pods !== undefined ? { pods } : {}), routed, ...chosen, progress: (l) => process.stderr.write(`twill-lab: ${l}\n`) });
      } catch (err) {
        if (!(err instanceof LabError && (err.code === 'ERR_LAB_PREREQ' || err.code === 'ERR_LAB_NAME'))) {
          process.stderr.write(`twill-lab: up stopped; what exists is left for inspection (${cmdPrefix(loc)} status); \`${cmdPrefix(loc)} down\` removes it\n`);
        }
        throw err;
      }
      const { report, notes } = up;
      process.stdout.write('\n' + renderReport(report, cmdPrefix(loc)));
      for (const n of notes) process.stdout.write(`note: ${n}\n`);
      return reportOk(report) ? 0 : 1;
    }
    case 'status': {
      const report = await labReport(loadLab(loc));
      process.stdout.write(renderReport(report, cmdPrefix(loc)));
      return reportOk(report) ? 0 : 1;
    }
    case 'exec': {
      if (args.length !== 1 || rest.length === 0) throw new UsageError('usage: twill-lab exec <host|pod> -- <command> [args...]');
      return labExec(loadLab(loc), args[0]!, rest);
    }
    case 'down': {
      const removed = await labDown(loc);
      process.stdout.write(removed ? `lab "${loc.name}" removed\n` : `no lab "${loc.name}" here; nothing to remove\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error & { code?: string }) => {
    process.stderr.write(`twill-lab: ${err.message}${err.code ? ` [${err.code}]` : ''}\n`);
    if (err instanceof LabError) for (const p of err.problems) process.stderr.write(`  - ${p}\n`);
    if (err.cause instanceof Error) process.stderr.write(`  cause: ${err.cause.message}\n`);
    if (err instanceof UsageError) process.stderr.write("Run 'twill-lab --help' for usage.\n");
    process.exit(err instanceof UsageError || (err instanceof LabError && (err.code === 'ERR_LAB_PREREQ' || err.code === 'ERR_LAB_NAME')) ? 2 : 1);
  },
);
