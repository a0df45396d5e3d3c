// The etcd3 client as twill configures it: endpoints, TLS material, deadlines, gRPC reconnect
// and keepalive settings, and the patches of etcd3-patches.ts applied and self-checked. The
// registry and the admin client (etcd-admin.ts) both get theirs here.
import * as fs from 'node:fs';
import { Etcd3, type CallContext, type IOptions } from 'etcd3';
import { dedupeWatchReconnects, etcd3PatchProblems, WATCH_RECONNECT_MAX_MS, WatchBackoff } from './etcd3-patches';
import { SubnetError } from './errors';

export interface EtcdOptions {
  endpoints: string[];
  prefix: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export type EtcdTls = Pick<EtcdOptions, 'caFile' | 'certFile' | 'keyFile'>;

/** The part of a pino logger the registry uses. */
export interface RegistryLogger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
  debug(o: object, m: string): void;
}

/** Deadline for every unary etcd call, so no await hangs forever during an outage. */
export const CALL_TIMEOUT_MS = 10_000;

let keyFileWarned = false;

function readFileFor(what: string, path: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new SubnetError('ERR_ETCD', `cannot read etcd ${what} file ${path}`, { cause: err });
  }
}

function warnIfKeyFileReadable(path: string, log: RegistryLogger): void {
  if (keyFileWarned) return;
  try {
    const mode = fs.statSync(path).mode;
    if ((mode & 0o044) !== 0) {
      keyFileWarned = true;
      log.warn({ keyFile: path, mode: `0${(mode & 0o777).toString(8)}` }, 'etcd key file is readable by group or others; chmod 600 it');
    }
  } catch {
    // Unreadable files are reported when they are read.
  }
}

/** Hosts, dial timeout, per-call deadlines and TLS material (files read now). */
export function baseOptions(endpoints: string[], tls: EtcdTls | undefined): IOptions {
  const options: IOptions = {
    hosts: endpoints,
    dialTimeout: CALL_TIMEOUT_MS,
    defaultCallOptions: (ctx: CallContext) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
  };
  if (tls && (tls.caFile || tls.certFile)) {
    // Without a CA file gRPC falls back to the system roots (the typings insist on a Buffer).
    options.credentials = {
      rootCertificate: (tls.caFile ? readFileFor('CA', tls.caFile) : undefined) as Buffer,
      ...(tls.certFile ? { certChain: readFileFor('certificate', tls.certFile) } : {}),
      ...(tls.keyFile ? { privateKey: readFileFor('key', tls.keyFile) } : {}),
    };
  }
  return options;
}

/** The daemon's client options: checked, with the gRPC settings an outage needs. */
export function registryOptions(opts: EtcdOptions, log: RegistryLogger): { prefix: string; options: IOptions } {
  if (opts.endpoints.length === 0) throw new SubnetError('ERR_ETCD', 'no etcd endpoints given');
  if (Boolean(opts.certFile) !== Boolean(opts.keyFile)) {
    throw new SubnetError('ERR_ETCD', 'etcd certFile and keyFile must be given together');
  }
  if (opts.keyFile && (opts.caFile || opts.certFile)) warnIfKeyFileReadable(opts.keyFile, log);
  const options = baseOptions(opts.endpoints, opts);
  options.grpcOptions = {
    // gRPC's own reconnect backoff grows to 2 minutes; after an etcd outage we want the
    // watch and renewals back within seconds.
    'grpc.initial_reconnect_backoff_ms': 500,
    'grpc.max_reconnect_backoff_ms': WATCH_RECONNECT_MAX_MS,
    // A watch on a silently dead TCP connection (etcd host powered off) would otherwise
    // wait forever; etcd permits pings every 5 s or more.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  };
  // flannel joins with path.Join, which drops a trailing slash.
  const prefix = opts.prefix.length > 1 ? opts.prefix.replace(/\/+$/, '') : opts.prefix;
  const tls = Boolean(options.credentials) || opts.endpoints.some((e) => e.startsWith('https:'));
  log.info({ endpoints: opts.endpoints, prefix, tls, clientCert: Boolean(opts.certFile) }, 'etcd registry created');
  return { prefix, options };
}

/**
 * A client with twill's etcd3 patches applied; throws ERR_ETCD3_PATCH when they do not fit.
 * `isClosed` tells the reconnect backoff that its owner is closed (reconnect at once: exit).
 */
export function patchedClient(options: IOptions, isClosed: () => boolean): Etcd3 {
  const client = new Etcd3({ ...options, faultHandling: { watchBackoff: new WatchBackoff(-1, isClosed) } });
  const problems = etcd3PatchProblems(client);
  if (problems.length > 0) {
    client.close();
    throw new SubnetError('ERR_ETCD3_PATCH', `etcd3 cannot be patched: ${problems.join('; ')}`);
  }
  dedupeWatchReconnects(client);
  return client;
}
