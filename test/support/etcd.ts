// A throwaway etcd for tests: /usr/bin/etcd on free 127.0.0.1 ports with a temp data dir,
// stopped by its own PID (never by name: other tests and engineers run etcds too).
// Test code may import etcd3 directly; product code reaches it only via src/subnet/etcd-*.ts.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';

export const ETCD_BIN = '/usr/bin/etcd';

export interface EtcdServer {
  endpoint: string;
  dataDir: string;
  pid: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Files for a TLS-serving etcd that also demands client certificates. */
export interface TestPki {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

/** A throwaway CA, a server cert for IP 127.0.0.1 and a client cert, made with openssl. */
export function makeTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-pki-'));
  const f = (name: string): string => path.join(dir, name);
  const ossl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=twill-test-ca');
  fs.writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  fs.writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    ossl('req', ...ec, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=twill-test-${who}`);
    ossl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.crt`), '-days', '2', '-extfile', f(`${who}.ext`));
  }
  return {
    dir,
    caFile: f('ca.crt'),
    serverCertFile: f('server.crt'),
    serverKeyFile: f('server.key'),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
  };
}

function httpsHealthy(url: string, pki: TestPki): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(
      `${url}/health`,
      { ca: fs.readFileSync(pki.caFile), cert: fs.readFileSync(pki.clientCertFile), key: fs.readFileSync(pki.clientKeyFile), timeout: 1000 },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function healthy(clientUrl: string, pki?: TestPki): Promise<boolean> {
  if (pki) return httpsHealthy(clientUrl, pki);
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function startOnce(dataDir: string, clientPort: number, peerPort: number, pki?: TestPki): Promise<{ child: ChildProcess; log: () => string }> {
  const clientUrl = `${pki ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const name = `twill-test-${process.pid}`;
  const child = spawn(
    ETCD_BIN,
    [
      `--name=${name}`,
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=${name}=${peerUrl}`,
      '--initial-cluster-state=new',
      '--logger=zap',
      '--log-level=warn',
      ...(pki ? [`--cert-file=${pki.serverCertFile}`, `--key-file=${pki.serverKeyFile}`, `--trusted-ca-file=${pki.caFile}`, '--client-cert-auth'] : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await healthy(clientUrl, pki)) return { child, log: () => stderr };
    await sleep(100);
  }
  child.kill('SIGKILL');
  await waitExit(child, 5000);
  throw new Error(`etcd did not become healthy on ${clientUrl}: ${stderr}`);
}

export interface TestEtcd extends EtcdServer {
  /** Stops etcd (keeping its data) and starts it again on the same ports. */
  restart(): Promise<void>;
  /** Stops etcd but keeps its data, for outage tests; resume() starts it again. */
  pause(): Promise<void>;
  resume(): Promise<void>;
}

/**
 * Starts etcd; the returned server can be paused/restarted on the same data dir and ports.
 * With `pki`, clients must use TLS with a client certificate signed by its CA.
 */
export async function startEtcd(opts: { pki?: TestPki } = {}): Promise<TestEtcd> {
  const pki = opts.pki;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-etcd-'));
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const clientPort = await freePort();
    const peerPort = await freePort();
    if (clientPort === peerPort) continue;
    try {
      let { child } = await startOnce(path.join(dataDir, 'data'), clientPort, peerPort, pki);
      const stopChild = async (): Promise<void> => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        process.kill(child.pid!, 'SIGTERM');
        if (!(await waitExit(child, 10_000))) {
          process.kill(child.pid!, 'SIGKILL');
          await waitExit(child, 5000);
        }
      };
      const server: TestEtcd = {
        endpoint: `${pki ? 'https' : 'http'}://127.0.0.1:${clientPort}`,
        dataDir,
        get pid(): number {
          return child.pid!;
        },
        async stop(): Promise<void> {
          await stopChild();
          fs.rmSync(dataDir, { recursive: true, force: true });
        },
        async restart(): Promise<void> {
          await stopChild();
          ({ child } = await startOnce(path.join(dataDir, 'data'), clientPort, peerPort, pki));
        },
        async pause(): Promise<void> {
          await stopChild();
        },
        async resume(): Promise<void> {
          ({ child } = await startOnce(path.join(dataDir, 'data'), clientPort, peerPort, pki));
        },
      };
      return server;
    } catch (err) {
      lastErr = err; // most likely a port taken between probing and binding: try others
      fs.rmSync(path.join(dataDir, 'data'), { recursive: true, force: true });
    }
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
  throw lastErr;
}

/** A short-lived client for one helper call. */
async function withClient<T>(endpoint: string, f: (c: Etcd3) => Promise<T>): Promise<T> {
  const c = new Etcd3({ hosts: [endpoint] });
  try {
    return await f(c);
  } finally {
    c.close();
  }
}

export function etcdPut(endpoint: string, key: string, value: string): Promise<string> {
  return withClient(endpoint, async (c) => (await c.put(key).value(value).exec()).header.revision);
}

export function etcdGet(endpoint: string, key: string): Promise<string | null> {
  return withClient(endpoint, (c) => c.get(key).string());
}

/** The key's value, etcd lease ID ("0" when none) and mod revision, or null. */
export function etcdGetKv(endpoint: string, key: string): Promise<{ value: string; lease: string; modRevision: string } | null> {
  return withClient(endpoint, async (c) => {
    const kv = (await c.get(key).exec()).kvs[0];
    return kv ? { value: kv.value.toString(), lease: kv.lease, modRevision: kv.mod_revision } : null;
  });
}

export function etcdDel(endpoint: string, key: string): Promise<void> {
  return withClient(endpoint, async (c) => {
    await c.delete().key(key).exec();
  });
}

export function etcdDelPrefix(endpoint: string, prefix: string): Promise<void> {
  return withClient(endpoint, async (c) => {
    await c.delete().prefix(prefix).exec();
  });
}

export function etcdKeys(endpoint: string, prefix: string): Promise<string[]> {
  return withClient(endpoint, (c) => c.getAll().prefix(prefix).keys());
}

export function etcdRevision(endpoint: string): Promise<string> {
  return withClient(endpoint, async (c) => (await c.getAll().prefix('\0').limit(1).exec()).header.revision);
}

/** Compacts history up to `revision` (default: the current revision). */
export function compact(endpoint: string, revision?: string): Promise<string> {
  return withClient(endpoint, async (c) => {
    const rev = revision ?? (await c.getAll().prefix('\0').limit(1).exec()).header.revision;
    await c.kv.compact({ revision: rev, physical: true });
    return rev;
  });
}

export function leaseTimeToLive(endpoint: string, leaseId: string): Promise<{ ttl: number; grantedTtl: number }> {
  return withClient(endpoint, async (c) => {
    const r = await c.leaseClient.leaseTimeToLive({ ID: leaseId });
    return { ttl: Number(r.TTL), grantedTtl: Number(r.grantedTTL) };
  });
}

export function revokeLease(endpoint: string, leaseId: string): Promise<void> {
  return withClient(endpoint, async (c) => {
    await c.leaseClient.leaseRevoke({ ID: leaseId });
  });
}

/** IDs of every etcd lease alive in the cluster. */
export function etcdLeaseIds(endpoint: string): Promise<string[]> {
  return withClient(endpoint, async (c) => (await c.leaseClient.leaseLeases({})).leases.map((l) => String(l.ID)));
}
