import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseDaemonArgs, type DaemonConfig } from '../../src/config/daemon';
import { startupProblems } from '../../src/daemon/preflight';

function cfg(...argv: string[]): DaemonConfig {
  const r = parseDaemonArgs(argv, {});
  assert.equal(r.kind, 'run');
  return (r as { config: DaemonConfig }).config;
}

const links = [
  { name: 'lo', addrs: ['127.0.0.1'] },
  { name: 'eth0', addrs: ['172.30.0.11'] },
  { name: 'twill.1', addrs: [] },
];

test('a missing --iface is a start-up error listing the interfaces that exist', () => {
  assert.deepEqual(startupProblems(cfg('--iface', 'nosuchif'), { links, unreadable: new Map() }), [
    '--iface nosuchif: no such interface on this host; interfaces here: lo (127.0.0.1), eth0 (172.30.0.11), twill.1',
  ]);
  assert.deepEqual(startupProblems(cfg('--iface', 'eth0'), { links, unreadable: new Map() }), []);
  assert.deepEqual(startupProblems(cfg(), { links, unreadable: new Map() }), [], 'no --iface: the default route decides later');
});

test('unreadable TLS files are named with their flag and errno, all at once', () => {
  const c = cfg('--etcd-certfile', '/etc/twill/client.crt', '--etcd-keyfile', '/etc/twill/client.key', '--iface', 'eth9');
  const problems = startupProblems(c, { links, unreadable: new Map([['/etc/twill/client.crt', 'ENOENT'], ['/etc/twill/client.key', 'EACCES']]) });
  assert.deepEqual(problems, [
    '--iface eth9: no such interface on this host; interfaces here: lo (127.0.0.1), eth0 (172.30.0.11), twill.1',
    '--etcd-certfile /etc/twill/client.crt: cannot read it (ENOENT)',
    '--etcd-keyfile /etc/twill/client.key: cannot read it (EACCES)',
  ]);
});
