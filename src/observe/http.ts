// The daemon's small HTTP endpoint: /healthz (liveness), /readyz (readiness), /metrics.
//
// /healthz answers from the event loop itself, so a 200 proves the loop still turns; it
// deliberately checks nothing else (a liveness probe that fails on etcd trouble makes systemd
// or kubelet restart a daemon that could not do better). /readyz reports the daemon's own
// conditions. Listen addresses are IP literals only: resolving a name here would make the
// bind address depend on DNS at boot.
import * as http from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from '../config/errors';
import type { Logger } from './log';
import { TwillError } from '../base/twill-error';

export interface ListenAddr {
  /** undefined: all interfaces. */
  host: string | undefined;
  port: number;
}

export interface HttpHandlers {
  /** `blocking`: the error in the way, with its subject and the next step (see src/daemon/readiness.ts). */
  ready(): { ok: boolean; reasons: string[]; blocking?: { subject: string; error: string; next: string } | undefined };
  /** The exposition text, handed to `write` in pieces as it is made (a scrape at 10,000 peers is ~3.5 MB). */
  metrics(write: (chunk: string) => void): void;
}

export interface HttpServerHandle {
  close(): Promise<void>;
  port: number;
}

export class HttpListenError extends TwillError<'ERR_HTTP_LISTEN'> {
  readonly addr: string;

  constructor(addr: string, cause: unknown) {
    super('ERR_HTTP_LISTEN', `cannot listen on ${addr}`, { cause });
    this.name = 'HttpListenError';
    this.addr = addr;
  }
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Parses "127.0.0.1:9464", "[::1]:9464" or ":9464" (all interfaces). Port 0 means any. */
export function parseListenAddr(addr: string, field = 'http-addr'): ListenAddr {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  if (!m) throw new ConfigError(field, `invalid listen address "${addr}" (expected IPv4:port, [IPv6]:port or :port)`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(field, `invalid port in listen address "${addr}"`);
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) throw new ConfigError(field, `invalid IPv6 address in listen address "${addr}"`);
    return { host: m[1], port };
  }
  const host = m[2] ?? '';
  if (host === '') return { host: undefined, port };
  if (!isIPv4(host)) throw new ConfigError(field, `listen address "${addr}" must use an IP literal, not "${host}"`);
  return { host, port };
}

export async function startHttpServer(addr: string, handlers: HttpHandlers, log: Logger): Promise<HttpServerHandle> {
  const listen = parseListenAddr(addr);
  const server = http.createServer((req, res) => handle(req, res, handlers, log));
  // Bounded timeouts: only probes and scrapers talk to this, a slow client is not served.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: unknown): void => reject(new HttpListenError(addr, err));
    server.once('error', onError);
    server.listen({ port: listen.port, host: listen.host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'http server error'));

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : listen.port;
  log.info({ addr, port }, 'http server listening');

  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive connections from a scraper would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

function handle(req: http.IncomingMessage, res: http.ServerResponse, handlers: HttpHandlers, log: Logger): void {
  const path = (req.url ?? '/').split('?', 1)[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    return;
  }
  try {
    switch (path) {
      case '/healthz':
        send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
        return;
      case '/readyz': {
        const r = handlers.ready();
        const body = JSON.stringify({ ready: r.ok, reasons: r.ok ? [] : r.reasons, ...(r.blocking ? { blocking: r.blocking } : {}) }) + '\n';
        send(res, r.ok ? 200 : 503, 'application/json', body);
        return;
      }
      case '/metrics':
        sendChunks(res, METRICS_CONTENT_TYPE, (write) => handlers.metrics(write));
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
  } catch (err) {
    log.error({ err, path }, 'http handler failed');
    // Part of a streamed body is out: the client must see a broken response, not a short one.
    if (res.headersSent) res.destroy();
    else send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
  }
}

/**
 * A body written as it is produced (chunked), so it never exists whole in memory: at 10,000
 * peers a scrape built as one string left 2-6 MB in V8's old generation per scrape (the line
 * array, the lines, the joined text outlive young-generation collections) until a full
 * collection. Headers go out with the first piece, so an error before it is still a 500.
 * HEAD gets the headers only (the collectors do not run).
 */
function sendChunks(res: http.ServerResponse, contentType: string, produce: (write: (chunk: string) => void) => void): void {
  const head = (): void => {
    res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  };
  if (res.req.method === 'HEAD') {
    head();
    res.end();
    return;
  }
  produce((chunk) => {
    if (!res.headersSent) head();
    res.write(chunk);
  });
  if (!res.headersSent) head();
  res.end();
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string, extra: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
