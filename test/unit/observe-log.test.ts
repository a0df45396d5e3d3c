import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import * as os from 'node:os';
import { createLogger, child } from '../../src/observe/log';
import { formatRecord, logRecord, textLine } from '../../src/observe/log-line';
import { ConfigError } from '../../src/config/errors';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('writes one JSON object per line with level, time, msg and object fields', () => {
  const c = capture();
  const log = createLogger('info', c.stream);
  log.info({ peers: 3 }, 'converged');
  const [line] = c.lines();
  assert.ok(line);
  assert.equal(line['msg'], 'converged');
  assert.equal(line['peers'], 3);
  assert.equal(line['level'], 'info');
  assert.match(String(line['time']), /^\d{4}-\d\d-\d\dT/);
});

test('level filters lower levels', () => {
  const c = capture();
  const log = createLogger('warn', c.stream);
  log.info('hidden');
  log.debug('hidden');
  log.warn('shown');
  assert.deepEqual(c.lines().map((l) => l['msg']), ['shown']);
  const silent = capture();
  createLogger('silent', silent.stream).fatal('nothing');
  assert.equal(silent.lines().length, 0);
});

test('child tags every line with its component', () => {
  const c = capture();
  const log = child(createLogger('debug', c.stream), 'registry');
  log.debug({ key: '/coreos.com/network/config' }, 'read config');
  assert.equal(c.lines()[0]?.['component'], 'registry');
});

test('credential-like fields are redacted', () => {
  const c = capture();
  const log = createLogger('info', c.stream);
  log.info({ password: 'hunter2', etcd: { password: 'hunter2', user: 'root' }, req: { headers: { authorization: 'Bearer x' } } }, 'connecting');
  const raw = JSON.stringify(c.lines());
  assert.doesNotMatch(raw, /hunter2/);
  assert.doesNotMatch(raw, /Bearer x/);
  assert.match(raw, /"user":"root"/);
});

test('errors are serialised with type, message and stack under err', () => {
  const c = capture();
  createLogger('info', c.stream).error({ err: new RangeError('boom') }, 'failed');
  const err = c.lines()[0]?.['err'] as Record<string, unknown>;
  assert.equal(err['type'], 'RangeError');
  assert.equal(err['message'], 'boom');
  assert.match(String(err['stack']), /RangeError: boom/);
});

test('unknown level is a ConfigError on log-level', () => {
  assert.throws(
    () => createLogger('verbose'),
    (err: unknown) => err instanceof ConfigError && err.code === 'ERR_CONFIG' && err.field === 'log-level',
  );
});

function rawCapture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

test('text format: time, level name, component, message, then the fields', () => {
  const c = rawCapture();
  const log = createLogger('info', c.stream, 'text');
  child(log, 'registry').warn({ endpoints: ['http://10.0.0.5:2379'], err: 'connect ECONNREFUSED 10.0.0.5:2379', peers: 3 }, 'cannot read network config from etcd; retrying');
  assert.match(
    c.text(),
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN  \[registry\] cannot read network config from etcd; retrying  endpoints=\["http:\/\/10\.0\.0\.5:2379"\] err="connect ECONNREFUSED 10\.0\.0\.5:2379" peers=3\n$/,
  );
});

test('one shape: twill-cni serve records have the keys and level names pino writes for twilld', () => {
  const c = capture();
  createLogger('info', c.stream).info({ command: 'ADD' }, 'CNI call');
  const pinoRec = c.lines()[0]!;
  const own = JSON.parse(formatRecord(logRecord('info', 'CNI call', { command: 'ADD' }, { pid: process.pid, hostname: os.hostname() }), 'json')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(own), Object.keys(pinoRec));
  assert.deepEqual([own['level'], own['pid'], own['hostname'], own['msg']], [pinoRec['level'], pinoRec['pid'], pinoRec['hostname'], pinoRec['msg']]);
  assert.match(String(own['time']), /^\d{4}-\d\d-\d\dT.*Z$/);
  assert.equal(textLine({ ...own, time: '2026-12-06T01:00:00.000Z' }), '2026-12-06T01:00:00.000Z INFO  CNI call  command=ADD\n');
});
