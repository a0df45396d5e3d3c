// twillctl's pure parts: the leases table, the status summary from /readyz and /metrics,
// the settings-file reader and the table/duration formatting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leaseRows, renderLeases } from '../../src/ctl/leases';
import { parsePrometheus, renderStatus, statusBaseUrl, StatusUnreachableError, summarize, unreachableJson } from '../../src/ctl/status';
import { ownEnvFile, parseEnvFile } from '../../src/ctl/env-file';
import { formatDuration, formatTable } from '../../src/ctl/table';

const P = '/coreos.com/network';
const lease = (ip: string, mac: string) => JSON.stringify({ PublicIP: ip, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: mac } });

test('lease rows: numeric subnet order, malformed values shown rather than hidden', () => {
  const rows = leaseRows(P, [
    { key: `${P}/subnets/10.244.10.0-24`, value: lease('192.168.56.12', '0e:00:00:00:00:02'), ttlSeconds: 86000 },
    { key: `${P}/subnets/10.244.9.0-24`, value: lease('192.168.56.11', '0e:00:00:00:00:01'), ttlSeconds: null },
    { key: `${P}/subnets/10.244.11.0-24`, value: 'not json', ttlSeconds: 5 },
    { key: `${P}/subnets/garbage`, value: '{}', ttlSeconds: 5 },
  ]);
  assert.deepEqual(
    rows.map((r) => r.subnet),
    ['? (/coreos.com/network/subnets/garbage)', '10.244.9.0/24', '10.244.10.0/24', '10.244.11.0/24'],
  );
  assert.deepEqual(rows[1], { subnet: '10.244.9.0/24', publicIp: '192.168.56.11', vtepMac: '0e:00:00:00:00:01', backend: 'vxlan', identity: '0e:00:00:00:00:01', ttlSeconds: null });
  assert.equal(rows[3]!.publicIp, '?');
  const text = renderLeases(rows);
  assert.match(text, /^SUBNET\s+PUBLIC IP\s+VTEP MAC \/ KEY\s+BACKEND\s+TTL LEFT$/m);
  assert.match(text, /^10\.244\.9\.0\/24\s+192\.168\.56\.11\s+0e:00:00:00:00:01\s+vxlan\s+no lease$/m);
  assert.match(text, /^10\.244\.10\.0\/24 .* 23h53m$/m);
  assert.equal(renderLeases([]), 'no subnet leases\n');
  // Other backends: wireguard leases show their public key, host-gw leases have no identity.
  const KEY = 'f8hJ0RZ0ts4eYfdGx3sCwGm3IIlzTcV/eRqr2cMzDn0=';
  const other = leaseRows(P, [
    { key: `${P}/subnets/10.244.12.0-24`, value: JSON.stringify({ PublicIP: '192.168.56.13', BackendType: 'wireguard', BackendData: { PublicKey: KEY, Port: 51820 } }), ttlSeconds: null },
    { key: `${P}/subnets/10.244.13.0-24`, value: JSON.stringify({ PublicIP: '192.168.56.14', BackendType: 'host-gw' }), ttlSeconds: null },
  ]);
  assert.deepEqual(other.map((r) => [r.backend, r.identity]), [['wireguard', KEY], ['host-gw', '-']]);
});

const METRICS = `# HELP twill_peers Remote hosts
# TYPE twill_peers gauge
twill_peers 2
twill_programmed_entries{kind="route"} 2
twill_programmed_entries{kind="fdb"} 2
twill_lease_info{subnet="10.244.7.0/24",public_ip="172.30.0.11",vtep_mac="0e:aa:bb:cc:dd:ee"} 1
twill_etcd_errors_total{op="renew"} 3
twill_etcd_errors_total{op="watch"} 1
twill_dataplane_errors_total{kind="route"} 0
twill_resyncs_total{reason="periodic"} 4
weird_metric{a="x\\"y"} 7
`;

test('prometheus text: names, labels (with escapes), values', () => {
  const s = parsePrometheus(METRICS);
  assert.deepEqual(s.find((x) => x.name === 'weird_metric'), { name: 'weird_metric', labels: { a: 'x"y' }, value: 7 });
  assert.equal(s.filter((x) => x.name === 'twill_programmed_entries').length, 2);
});

test('status summary and rendering', () => {
  const st = summarize('{"ready":true,"reasons":[]}', METRICS);
  assert.deepEqual(st, {
    ready: true,
    reasons: [],
    blocking: null,
    lease: { subnet: '10.244.7.0/24', publicIp: '172.30.0.11', vtepMac: '0e:aa:bb:cc:dd:ee' },
    peers: 2,
    programmed: { route: 2, fdb: 2 },
    etcdErrors: 4,
    dataplaneErrors: 0,
    driftRepaired: 0,
    resyncs: 4,
  });
  assert.match(renderStatus('127.0.0.1:9464', st), /^twilld at 127\.0\.0\.1:9464: ready\n/);
  const down = summarize('{"ready":false,"reasons":["no subnet lease held"]}', '');
  assert.equal(down.ready, false);
  assert.equal(down.lease, null);
  const text = renderStatus('127.0.0.1:9464', down);
  assert.match(text, /NOT READY\n  - no subnet lease held\n/);
  assert.match(text, /lease\s+none held/);
  assert.deepEqual(summarize('<html>', '').reasons, ['unreadable /readyz answer']);
});

test('status names what blocks the daemon, and the next step', () => {
  const body = JSON.stringify({
    ready: false,
    reasons: ['no subnet lease held', 'dataplane has not converged', 'subnet file /run/twill/subnet.env not written'],
    blocking: { subject: 'network config /coreos.com/network/config field SubnetLen', error: 'network config SubnetLen: 33 is not in 16..30', next: "fix it with etcdctl put /coreos.com/network/config '<corrected JSON>'" },
  });
  const st = summarize(body, '');
  assert.equal(st.blocking?.subject, 'network config /coreos.com/network/config field SubnetLen');
  const text = renderStatus('127.0.0.1:9464', st);
  assert.match(text, /^  blocked by       network config \/coreos\.com\/network\/config field SubnetLen: network config SubnetLen: 33 is not in 16\.\.30$/m);
  assert.match(text, /^  next step        fix it with etcdctl put/m);
  // Ready, but renewals failing: shown as a warning.
  const warn = renderStatus('127.0.0.1:9464', summarize(JSON.stringify({ ready: true, reasons: [], blocking: { subject: 'etcd http://10.0.0.5:2379', error: 'connect ECONNREFUSED 10.0.0.5:2379', next: 'check etcd' } }), ''));
  assert.match(warn, /^  warning          etcd http:\/\/10\.0\.0\.5:2379: connect ECONNREFUSED/m);
});

test('status --json when the daemon is unreachable: still JSON, naming the address', () => {
  const err = new StatusUnreachableError('http://127.0.0.1:1/readyz', new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') }));
  assert.match(err.message, /^cannot reach twilld at http:\/\/127\.0\.0\.1:1\/readyz: connect ECONNREFUSED 127\.0\.0\.1:1; is it running/);
  const j = JSON.parse(unreachableJson('127.0.0.1:1', err)) as Record<string, unknown>;
  assert.deepEqual([j['ready'], j['reachable'], j['httpAddr']], [false, false, '127.0.0.1:1']);
  // Any other failure (an unusable --http-addr) is JSON too.
  const bad = JSON.parse(unreachableJson('bogus', new Error('invalid listen address "bogus"'))) as Record<string, unknown>;
  assert.deepEqual(bad, { ready: false, reachable: false, httpAddr: 'bogus', error: 'invalid listen address "bogus"' });
});

test('status URL from the daemon listen address', () => {
  assert.equal(statusBaseUrl('127.0.0.1:9464'), 'http://127.0.0.1:9464');
  assert.equal(statusBaseUrl(':9464'), 'http://127.0.0.1:9464');
  assert.equal(statusBaseUrl('[::1]:9000'), 'http://[::1]:9000');
});

test('settings file: comments, blanks, quotes, export', () => {
  assert.deepEqual(parseEnvFile('# c\n\nA=1\nexport B="two words"\nC=\'x\'\n;d\nbad line\nE=\n'), { A: '1', B: 'two words', C: 'x', E: '' });
});

test('tables and durations', () => {
  assert.equal(formatTable(['A', 'LONGER'], [['xxxx', 'y'], ['z', '']]), 'A     LONGER\nxxxx  y\nz\n');
  assert.deepEqual([5, 65, 3600 + 120, 86400 * 2 + 3600 * 3, -1].map(formatDuration), ['5s', '1m5s', '1h2m', '2d3h', '0s']);
});

test('the settings file is the one of the install twillctl runs from', () => {
  assert.equal(ownEnvFile('/opt/twill/releases/0.1.0-20261206-abc/dist/src/ctl'), '/etc/twill/twilld.env');
  assert.equal(ownEnvFile('/run/twill-lab/lab/root/opt/twill/releases/0.1.0-x/dist/src/ctl'), '/run/twill-lab/lab/root/etc/twill/twilld.env');
  assert.equal(ownEnvFile('/run/twill-lab/lab/root/opt/twill/current/dist/src/ctl'), '/run/twill-lab/lab/root/etc/twill/twilld.env');
  assert.equal(ownEnvFile('/home/me/twill/dist/src/ctl'), '/etc/twill/twilld.env', 'a checkout: the machine file');
});
