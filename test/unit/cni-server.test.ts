// The wire format between the native front-end (native/cni_front.c) and `twill serve`:
// requests decoded only when whole, junk and oversize requests rejected, only the variables
// the plugin reads taken from the caller, answers framed for the front-end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRequest, encodeAnswer, WireError } from '../../src/cni/server';

function request(envEntries: string[], stdin: string, magic = 'TWC1'): Buffer {
  const env = Buffer.from(envEntries.map((e) => `${e}\0`).join(''));
  const body = Buffer.from(stdin);
  const head = Buffer.alloc(12);
  head.write(magic, 0, 'latin1');
  head.writeUInt32BE(env.length, 4);
  head.writeUInt32BE(body.length, 8);
  return Buffer.concat([head, env, body]);
}

test('a whole request decodes; every shorter prefix asks for more bytes', () => {
  const buf = request(['CNI_COMMAND=ADD', 'CNI_NETNS=/run/netns/p=1', 'CNI_ARGS='], '{"cniVersion":"1.0.0","name":"ü"}');
  for (let n = 0; n < buf.length; n++) assert.equal(decodeRequest(buf.subarray(0, n)), undefined, `prefix of ${n} bytes`);
  assert.deepEqual(decodeRequest(buf), {
    env: { CNI_COMMAND: 'ADD', CNI_NETNS: '/run/netns/p=1', CNI_ARGS: '' },
    stdin: '{"cniVersion":"1.0.0","name":"ü"}',
  });
});

test('only CNI_* and TWILL_CNI_DEBUG are taken from the caller', () => {
  const req = decodeRequest(request(['CNI_COMMAND=DEL', 'NODE_OPTIONS=--require /tmp/x.js', 'TWILL_CNI_DEBUG=1', 'PATH=/tmp', '=x', 'CNI_IFNAME'], ''));
  assert.deepEqual(req?.env, { CNI_COMMAND: 'DEL', TWILL_CNI_DEBUG: '1' });
});

test('junk and oversize requests are refused before they are buffered whole', () => {
  assert.throws(() => decodeRequest(request([], '', 'GET ')), WireError);
  const huge = Buffer.alloc(12);
  huge.write('TWC1', 0, 'latin1');
  huge.writeUInt32BE(16, 4);
  huge.writeUInt32BE(64 * 1024 * 1024, 8);
  assert.throws(() => decodeRequest(huge), (e: unknown) => e instanceof WireError && e.code === 'ERR_CNI_WIRE' && /too large/.test(e.message));
  const bigEnv = Buffer.from(huge);
  bigEnv.writeUInt32BE(1024 * 1024, 4);
  bigEnv.writeUInt32BE(0, 8);
  assert.throws(() => decodeRequest(bigEnv), WireError);
});

test('answers carry the exit status and stdout plus the newline the plugin prints', () => {
  const a = encodeAnswer({ stdout: '{"code":7}', exitCode: 1 });
  assert.equal(a.toString('latin1', 0, 4), 'TWR1');
  assert.equal(a.readUInt32BE(4), 1);
  assert.equal(a.readUInt32BE(8), 11);
  assert.equal(a.toString('utf8', 12), '{"code":7}\n');
  const empty = encodeAnswer({ stdout: '', exitCode: 0 });
  assert.equal(empty.length, 12);
  assert.equal(empty.readUInt32BE(8), 0);
});
