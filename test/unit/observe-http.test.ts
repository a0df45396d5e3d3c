import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import { startHttpServer, parseListenAddr, HttpListenError, METRICS_CONTENT_TYPE, type HttpHandlers } from '../../src/observe/http';
import { createLogger } from '../../src/observe/log';
import { ConfigError } from '../../src/config/errors';

const log = createLogger('silent');

test('parseListenAddr accepts IPv4:port, [IPv6]:port and :port', () => {
  assert.deepEqual(parseListenAddr('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseListenAddr('[::1]:9464'), { host: '::1', port: 9464 });
  assert.deepEqual(parseListenAddr(':9464'), { host: undefined, port: 9464 });
  assert.deepEqual(parseListenAddr('0.0.0.0:0'), { host: '0.0.0.0', port: 0 });
});

test('parseListenAddr rejects malformed addresses with ConfigError on http-addr', () => {
  for (const bad of ['', '9464', '127.0.0.1', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:99999', 'localhost:9464', '::1:9464', '[::1]', '[127.0.0.1]:80', '1.2.3:80', '[::1]:x', '127.0.0.1:-1']) {
    assert.throws(
      () => parseListenAddr(bad),
      (err: unknown) => err instanceof ConfigError && err.code === 'ERR_CONFIG' && err.field === 'http-addr',
      bad,
    );
  }
});

test('serves /healthz, /readyz, /metrics and 404 on port 0', async () => {
  let ready: ReturnType<HttpHandlers['ready']> = { ok: false, reasons: ['no lease', 'dataplane not converged'] };
  const srv = await startHttpServer('127.0.0.1:0', { ready: () => ready, metrics: (w) => w('m_total 1\n') }, log);
  try {
    assert.ok(srv.port > 0);
    const base = `http://127.0.0.1:${srv.port}`;

    const h = await fetch(`${base}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(await h.text(), 'ok\n');

    const r1 = await fetch(`${base}/readyz`);
    assert.equal(r1.status, 503);
    assert.match(r1.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await r1.json(), { ready: false, reasons: ['no lease', 'dataplane not converged'] });

    // The blocking error is passed on with its subject and next step.
    const blocking = { subject: 'etcd http://10.0.0.5:2379', error: 'connect ECONNREFUSED 10.0.0.5:2379', next: 'check etcd' };
    ready = { ok: false, reasons: ['no lease'], blocking };
    const rb = await fetch(`${base}/readyz`);
    assert.deepEqual(await rb.json(), { ready: false, reasons: ['no lease'], blocking });
    ready = { ok: true, reasons: [] };
    const r2 = await fetch(`${base}/readyz?verbose=1`);
    assert.equal(r2.status, 200);
    assert.deepEqual(await r2.json(), { ready: true, reasons: [] });

    const m = await fetch(`${base}/metrics`);
    assert.equal(m.status, 200);
    assert.equal(m.headers.get('content-type'), METRICS_CONTENT_TYPE);
    assert.match(METRICS_CONTENT_TYPE, /^text\/plain; version=0\.0\.4/);
    assert.equal(await m.text(), 'm_total 1\n');

    const n = await fetch(`${base}/nope`);
    assert.equal(n.status, 404);
    await n.text();

    const p = await fetch(`${base}/metrics`, { method: 'POST' });
    assert.equal(p.status, 405);
    assert.equal(p.headers.get('allow'), 'GET, HEAD');
    await p.text();

    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  } finally {
    await srv.close();
  }
});

test('a throwing handler gives 500 and the server keeps serving', async () => {
  const srv = await startHttpServer(
    '127.0.0.1:0',
    {
      ready: () => ({ ok: true, reasons: [] }),
      metrics: () => {
        throw new Error('collector broke');
      },
    },
    log,
  );
  try {
    const base = `http://127.0.0.1:${srv.port}`;
    const m = await fetch(`${base}/metrics`);
    assert.equal(m.status, 500);
    assert.doesNotMatch(await m.text(), /collector broke/);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  } finally {
    await srv.close();
  }
});

test('/metrics streams its pieces; a failure after the first piece breaks the response, not the server', async () => {
  const piece = (i: number): string => `m_total{i="${i}"} ${i}\n`.padEnd(16_384, '#') + '\n';
  let fail = false;
  const srv = await startHttpServer(
    '127.0.0.1:0',
    {
      ready: () => ({ ok: true, reasons: [] }),
      metrics: (w) => {
        for (let i = 0; i < 200; i++) {
          if (fail && i === 3) throw new Error('collector broke mid-way');
          w(piece(i));
        }
      },
    },
    log,
  );
  try {
    const base = `http://127.0.0.1:${srv.port}`;
    const m = await fetch(`${base}/metrics`);
    assert.equal(m.status, 200);
    assert.equal(m.headers.get('content-type'), METRICS_CONTENT_TYPE);
    const text = await m.text();
    assert.equal(text.length, 200 * 16_385);
    assert.equal(text, Array.from({ length: 200 }, (_, i) => piece(i)).join(''));
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    fail = true;
    // Headers and three pieces are out: the client sees the body cut off, never a short 200.
    await assert.rejects(async () => (await fetch(`${base}/metrics`)).text());
    fail = false;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await (await fetch(`${base}/metrics`)).text()).length, 200 * 16_385);
  } finally {
    await srv.close();
  }
});

test(':0 listens on all interfaces', async () => {
  const srv = await startHttpServer(':0', { ready: () => ({ ok: true, reasons: [] }), metrics: () => undefined }, log);
  try {
    assert.equal((await fetch(`http://127.0.0.1:${srv.port}/healthz`)).status, 200);
  } finally {
    await srv.close();
  }
});

test('[::1]:0 listens on IPv6 loopback', async (t) => {
  let srv;
  try {
    srv = await startHttpServer('[::1]:0', { ready: () => ({ ok: true, reasons: [] }), metrics: () => undefined }, log);
  } catch (err) {
    if (err instanceof HttpListenError) {
      t.skip('no IPv6 loopback here');
      return;
    }
    throw err;
  }
  try {
    assert.equal((await fetch(`http://[::1]:${srv.port}/healthz`)).status, 200);
  } finally {
    await srv.close();
  }
});

test('close() returns promptly even with an idle keep-alive connection', async () => {
  const srv = await startHttpServer('127.0.0.1:0', { ready: () => ({ ok: true, reasons: [] }), metrics: () => undefined }, log);
  const agent = new http.Agent({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: srv.port, path: '/healthz', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
      .on('error', reject);
  });
  const started = Date.now();
  await srv.close();
  agent.destroy();
  assert.ok(Date.now() - started < 1000, 'close waited for the idle connection');
  await assert.rejects(fetch(`http://127.0.0.1:${srv.port}/healthz`));
});

test('invalid address rejects with ConfigError; a taken port with HttpListenError', async () => {
  const handlers = { ready: () => ({ ok: true, reasons: [] }), metrics: () => undefined };
  await assert.rejects(startHttpServer('nonsense', handlers, log), (err: unknown) => err instanceof ConfigError && err.field === 'http-addr');
  const first = await startHttpServer('127.0.0.1:0', handlers, log);
  try {
    await assert.rejects(
      startHttpServer(`127.0.0.1:${first.port}`, handlers, log),
      (err: unknown) =>
        err instanceof HttpListenError && err.code === 'ERR_HTTP_LISTEN' && (err.cause as { code?: string }).code === 'EADDRINUSE',
    );
  } finally {
    await first.close();
  }
});
