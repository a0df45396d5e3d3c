import * as os from 'node:os';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseDaemonArgs, envName, type DaemonConfig } from '../../src/config/daemon';
import { ConfigError } from '../../src/config/errors';

function run(argv: string[], env: NodeJS.ProcessEnv = {}): DaemonConfig {
  const r = parseDaemonArgs(argv, env);
  assert.equal(r.kind, 'run');
  return (r as { config: DaemonConfig }).config;
}

function configError(field: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.equal(err.code, 'ERR_CONFIG');
    assert.equal(err.field, field);
    return true;
  };
}

const ALL_VALUE_FLAGS = [
  'etcd-endpoints',
  'etcd-prefix',
  'etcd-cafile',
  'etcd-certfile',
  'etcd-keyfile',
  'iface',
  'iface-regex',
  'iface-can-reach',
  'public-ip',
  'subnet-file',
  'state-dir',
  'http-addr',
  'subnet-lease-ttl',
  'subnet-lease-renew-margin',
  'resync-interval',
  'dataplane',
  'ip-masq',
  'wireguard-device',
  'log-level',
  'node-name',
  'probe-port',
  'probe-interval',
  'probe-rate',
  'log-format',
];

test('defaults', () => {
  assert.deepEqual(run([]), {
    etcdEndpoints: ['http://127.0.0.1:2379'],
    etcdPrefix: '/coreos.com/network',
    etcdCafile: undefined,
    etcdCertfile: undefined,
    etcdKeyfile: undefined,
    iface: [],
    ifaceRegex: [],
    ifaceCanReach: undefined,
    publicIp: undefined,
    subnetFile: '/run/twill/subnet.env',
    stateDir: '/var/lib/twill',
    httpAddr: '127.0.0.1:9464',
    subnetLeaseTtl: 86400,
    subnetLeaseRenewMargin: 60,
    resyncInterval: 60,
    dataplane: 'kernel',
    ipMasq: true,
    wireguardDevice: 'twill-wg',
    logLevel: 'info',
    nodeName: os.hostname(),
    probePort: 8475,
    probeInterval: 10,
    probeRate: 100,
    logFormat: undefined,
  });
});

test('every flag in both --flag value and --flag=value forms', () => {
  const values: Record<string, string> = {
    'etcd-endpoints': 'https://10.0.0.1:2379,https://10.0.0.2:2379',
    'etcd-prefix': '/twill/network',
    'etcd-cafile': '/etc/twill/ca.pem',
    'etcd-certfile': '/etc/twill/client.pem',
    'etcd-keyfile': '/etc/twill/client-key.pem',
    iface: 'eth1',
    'iface-regex': '^192\\.168\\.',
    'iface-can-reach': '192.168.50.1',
    'public-ip': '192.168.50.11',
    'subnet-file': '/tmp/subnet.env',
    'state-dir': '/tmp/state',
    'http-addr': '[::1]:9000',
    'subnet-lease-ttl': '3600',
    'subnet-lease-renew-margin': '10',
    'resync-interval': '30',
    dataplane: 'userspace',
    'ip-masq': 'false',
    'wireguard-device': 'twill-wg-h1',
    'log-level': 'debug',
    'node-name': 'tw1',
    'probe-port': '9999',
    'probe-interval': '2',
    'probe-rate': '50',
    'log-format': 'text',
  };
  const expected: DaemonConfig = {
    etcdEndpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'],
    etcdPrefix: '/twill/network',
    etcdCafile: '/etc/twill/ca.pem',
    etcdCertfile: '/etc/twill/client.pem',
    etcdKeyfile: '/etc/twill/client-key.pem',
    iface: ['eth1'],
    ifaceRegex: ['^192\\.168\\.'],
    ifaceCanReach: '192.168.50.1',
    publicIp: '192.168.50.11',
    subnetFile: '/tmp/subnet.env',
    stateDir: '/tmp/state',
    httpAddr: '[::1]:9000',
    subnetLeaseTtl: 3600,
    subnetLeaseRenewMargin: 10,
    resyncInterval: 30,
    dataplane: 'userspace',
    ipMasq: false,
    wireguardDevice: 'twill-wg-h1',
    logLevel: 'debug',
    nodeName: 'tw1',
    probePort: 9999,
    probeInterval: 2,
    probeRate: 50,
    logFormat: 'text',
  };
  assert.deepEqual(Object.keys(values).sort(), [...ALL_VALUE_FLAGS].sort());
  // --ip-masq's value is optional, so it only takes the --flag=value form.
  assert.deepEqual(run(Object.entries(values).flatMap(([k, v]) => (k === 'ip-masq' ? [`--${k}=${v}`] : [`--${k}`, v]))), expected);
  assert.deepEqual(run(Object.entries(values).map(([k, v]) => `--${k}=${v}`)), expected);
  const env = Object.fromEntries(Object.entries(values).map(([k, v]) => [envName(k), v]));
  assert.deepEqual(run([], env), expected);
});

test('--ip-masq: on by default, alone means true, =false or TWILLD_IP_MASQ=false turns it off, other values are refused', () => {
  assert.equal(run([]).ipMasq, true);
  assert.equal(run(['--ip-masq']).ipMasq, true);
  assert.deepEqual(run(['--ip-masq', '--iface', 'eth0']).iface, ['eth0']);
  assert.equal(run(['--ip-masq=false']).ipMasq, false);
  assert.equal(run(['--ip-masq=true']).ipMasq, true);
  assert.equal(run([], { TWILLD_IP_MASQ: 'false' }).ipMasq, false);
  assert.equal(run(['--ip-masq'], { TWILLD_IP_MASQ: 'false' }).ipMasq, true);
  for (const bad of ['--ip-masq=no', '--ip-masq=']) assert.throws(() => run([bad]), (e: Error & { field?: string }) => e.field === 'ip-masq', bad);
  assert.throws(() => run(['--ip-masq', 'false']), /unexpected argument/);
});

test('env names are TWILLD_ + uppercase with underscores', () => {
  assert.equal(envName('etcd-endpoints'), 'TWILLD_ETCD_ENDPOINTS');
  assert.equal(envName('subnet-lease-renew-margin'), 'TWILLD_SUBNET_LEASE_RENEW_MARGIN');
});

test('a flag wins over the environment; empty env values count as unset', () => {
  const env = { TWILLD_IFACE: 'eth0', TWILLD_RESYNC_INTERVAL: '10', TWILLD_PUBLIC_IP: '', TWILLD_LOG_LEVEL: 'warn' };
  const c = run(['--iface', 'eth9', '--resync-interval=20'], env);
  assert.deepEqual(c.iface, ['eth9']);
  assert.equal(c.resyncInterval, 20);
  assert.equal(c.publicIp, undefined);
  assert.equal(c.logLevel, 'warn');
});

test('the last occurrence of a repeated flag wins, except --iface and --iface-regex, which collect in order (env: comma-separated)', () => {
  assert.equal(run(['--log-level', 'warn', '--log-level', 'debug']).logLevel, 'debug');
  assert.deepEqual(run(['--iface', 'a', '--iface', '10.0.0.1', '--iface', 'b']).iface, ['a', '10.0.0.1', 'b']);
  assert.deepEqual(run(['--iface-regex', '^eth', '--iface-regex', '^10\\.']).ifaceRegex, ['^eth', '^10\\.']);
  assert.deepEqual(run([], { TWILLD_IFACE: 'eth0,eth1' }).iface, ['eth0', 'eth1']);
  assert.throws(() => run(['--iface-regex', '(']), configError('iface-regex'));
  assert.throws(() => run(['--iface-can-reach', 'example.org']), configError('iface-can-reach'));
  assert.throws(() => run([], { TWILLD_IFACE: 'eth0,' }), configError('iface'));
});

test('endpoint lists tolerate spaces and empty items; prefix loses trailing slashes', () => {
  const c = run(['--etcd-endpoints', ' http://a:2379 , ,https://b:2379,', '--etcd-prefix', '/x/y//']);
  assert.deepEqual(c.etcdEndpoints, ['http://a:2379', 'https://b:2379']);
  assert.equal(c.etcdPrefix, '/x/y');
});

test('--help and -h return help text documenting every flag with env name and default', () => {
  for (const argv of [['--help'], ['-h'], ['--iface', 'eth0', '--help']]) {
    const r = parseDaemonArgs(argv, {});
    assert.equal(r.kind, 'help');
  }
  const r = parseDaemonArgs(['--help'], {});
  assert.ok(r.kind === 'help');
  for (const flag of [...ALL_VALUE_FLAGS, 'help', 'version']) assert.match(r.text, new RegExp(`--${flag}\\b`), flag);
  for (const flag of ALL_VALUE_FLAGS) assert.ok(r.text.includes(envName(flag)), envName(flag));
  for (const dflt of ['http://127.0.0.1:2379', '/coreos.com/network', '/run/twill/subnet.env', '/var/lib/twill', '127.0.0.1:9464', '86400', 'default: 60', 'default: kernel', 'default: info']) {
    assert.ok(r.text.includes(dflt), dflt);
  }
});

test('--help skips validation of other values; --version', () => {
  assert.equal(parseDaemonArgs(['--public-ip', 'nope', '--help'], {}).kind, 'help');
  assert.deepEqual(parseDaemonArgs(['--version'], { TWILLD_PUBLIC_IP: 'nope' }), { kind: 'version' });
});

test('unknown flags, positional arguments and values on boolean flags', () => {
  assert.throws(() => parseDaemonArgs(['--bogus'], {}), configError('bogus'));
  assert.throws(() => parseDaemonArgs(['--bogus=1'], {}), configError('bogus'));
  assert.throws(() => parseDaemonArgs(['eth0'], {}), configError('eth0'));
  assert.throws(() => parseDaemonArgs(['-v'], {}), configError('-v'));
  assert.throws(() => parseDaemonArgs(['--'], {}), configError('--'));
  assert.throws(() => parseDaemonArgs(['--help=yes'], {}), configError('help'));
  assert.throws(() => parseDaemonArgs(['--version=1'], {}), configError('version'));
});

test('missing values', () => {
  assert.throws(() => parseDaemonArgs(['--iface'], {}), configError('iface'));
  assert.throws(() => parseDaemonArgs(['--iface', '--public-ip', '1.2.3.4'], {}), configError('iface'));
  assert.throws(() => parseDaemonArgs(['--iface='], {}), configError('iface'));
  assert.throws(() => parseDaemonArgs(['--state-dir', '  '], {}), configError('state-dir'));
});

test('bad numbers', () => {
  for (const flag of ['subnet-lease-ttl', 'subnet-lease-renew-margin', 'resync-interval']) {
    for (const bad of ['abc', '-5', '1.5', '0', '1e3', '0x10', '99999999999']) {
      assert.throws(() => parseDaemonArgs([`--${flag}=${bad}`], {}), configError(flag), `${flag}=${bad}`);
    }
  }
  assert.throws(() => parseDaemonArgs([], { TWILLD_RESYNC_INTERVAL: 'often' }), configError('resync-interval'));
});

test('renew margin must be shorter than the TTL (minutes vs seconds)', () => {
  assert.throws(() => parseDaemonArgs(['--subnet-lease-ttl', '3600', '--subnet-lease-renew-margin', '60'], {}), configError('subnet-lease-renew-margin'));
  assert.throws(() => parseDaemonArgs(['--subnet-lease-ttl', '600'], {}), configError('subnet-lease-renew-margin'));
  const c = run(['--subnet-lease-ttl', '3601', '--subnet-lease-renew-margin', '60']);
  assert.equal(c.subnetLeaseTtl, 3601);
});

test('bad IPs', () => {
  for (const bad of ['nope', '10.0.0', '10.0.0.256', '::1', '10.0.0.1/24', '010.0.0.1']) {
    assert.throws(() => parseDaemonArgs(['--public-ip', bad], {}), configError('public-ip'), bad);
  }
  assert.throws(() => parseDaemonArgs([], { TWILLD_PUBLIC_IP: 'fe80::1' }), configError('public-ip'));
});

test('bad URLs', () => {
  for (const bad of ['127.0.0.1:2379', 'ftp://a:2379', 'unix:///run/etcd.sock', 'http://', 'http://user:secret@a:2379', ',', 'http://a:2379,grpc://b:2379']) {
    assert.throws(() => parseDaemonArgs(['--etcd-endpoints', bad], {}), configError('etcd-endpoints'), bad);
  }
  assert.throws(
    () => parseDaemonArgs(['--etcd-endpoints', 'http://user:secret@a:2379'], {}),
    (err: unknown) => err instanceof ConfigError && !err.message.includes('secret'),
  );
});

test('cert and key must be given together', () => {
  assert.throws(() => parseDaemonArgs(['--etcd-certfile', '/c.pem'], {}), configError('etcd-keyfile'));
  assert.throws(() => parseDaemonArgs(['--etcd-keyfile', '/k.pem'], {}), configError('etcd-certfile'));
  assert.throws(() => parseDaemonArgs([], { TWILLD_ETCD_KEYFILE: '/k.pem' }), configError('etcd-certfile'));
  const c = run(['--etcd-cafile', '/ca.pem']);
  assert.equal(c.etcdCafile, '/ca.pem');
});

test('other invalid values', () => {
  assert.throws(() => parseDaemonArgs(['--dataplane', 'dpdk'], {}), configError('dataplane'));
  assert.throws(() => parseDaemonArgs(['--log-level', 'verbose'], {}), configError('log-level'));
  assert.throws(() => parseDaemonArgs(['--http-addr', 'localhost:9464'], {}), configError('http-addr'));
  assert.throws(() => parseDaemonArgs(['--etcd-prefix', 'coreos.com/network'], {}), configError('etcd-prefix'));
  assert.throws(() => parseDaemonArgs(['--etcd-prefix', '/'], {}), configError('etcd-prefix'));
  assert.throws(() => parseDaemonArgs(['--iface', 'a-very-long-ifname0'], {}), configError('iface'));
  assert.throws(() => parseDaemonArgs(['--iface', 'eth/0'], {}), configError('iface'));
  assert.equal(run(['--dataplane', 'auto']).dataplane, 'auto');
});
