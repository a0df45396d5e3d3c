import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatNetworkConfig, NetworkConfigError, parseNetworkConfig, type NetworkConfig } from '../../src/config/network';
import { formatIp4, formatPrefix4 } from '../../src/ip/ipv4';

function summary(c: NetworkConfig): object {
  return {
    network: formatPrefix4(c.network),
    subnetLen: c.subnetLen,
    subnetMin: formatIp4(c.subnetMin),
    subnetMax: formatIp4(c.subnetMax),
    backend: c.backend,
  };
}

function assertConfigError(text: string, field: string): NetworkConfigError {
  let caught: unknown;
  try {
    parseNetworkConfig(text);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof NetworkConfigError, `expected NetworkConfigError for ${text}, got ${String(caught)}`);
  assert.equal(caught.code, 'ERR_NETWORK_CONFIG');
  assert.equal(caught.field, field, `field for ${text}: ${caught.message}`);
  assert.ok(caught.message.includes(field), `message names the field: ${caught.message}`);
  return caught;
}

// --- flannel's documented examples ---------------------------------------------------------

test('flannel docs: plain vxlan config gets /24s from the second to the last subnet', () => {
  const c = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
  assert.deepEqual(summary(c), {
    network: '10.244.0.0/16',
    subnetLen: 24,
    subnetMin: '10.244.1.0',
    subnetMax: '10.244.255.0',
    backend: { type: 'vxlan', vni: 1, port: 8472, directRouting: false },
  });
});

test('flannel docs: the "most options" example (with the vxlan backend)', () => {
  const c = parseNetworkConfig(`{
    "Network": "10.0.0.0/8",
    "SubnetLen": 20,
    "SubnetMin": "10.10.0.0",
    "SubnetMax": "10.99.0.0",
    "Backend": { "Type": "vxlan", "Port": 7890 }
  }`);
  assert.deepEqual(summary(c), {
    network: '10.0.0.0/8',
    subnetLen: 20,
    subnetMin: '10.10.0.0',
    subnetMax: '10.99.0.0',
    backend: { type: 'vxlan', vni: 1, port: 7890, directRouting: false },
  });
});

test("flannel's config_test: lowercase keys and defaults", () => {
  const c = parseNetworkConfig('{ "network": "10.3.0.0/16" }');
  assert.deepEqual(summary(c), {
    network: '10.3.0.0/16',
    subnetLen: 24,
    subnetMin: '10.3.1.0',
    subnetMax: '10.3.255.0',
    backend: { type: 'vxlan', vni: 1, port: 8472, directRouting: false },
  });
});

test("flannel's config_test: overrides", () => {
  const c = parseNetworkConfig('{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.5.0", "SubnetMax": "10.3.8.0", "SubnetLen": 28 }');
  assert.deepEqual(summary(c), {
    network: '10.3.0.0/16',
    subnetLen: 28,
    subnetMin: '10.3.5.0',
    subnetMax: '10.3.8.0',
    backend: { type: 'vxlan', vni: 1, port: 8472, directRouting: false },
  });
});

// --- SubnetLen defaults (flannel config.go: /22 or larger → 24, /23../28 → len+2) -----------

test('default SubnetLen follows network size', () => {
  const cases: Array<[string, number, string, string]> = [
    ['10.0.0.0/8', 24, '10.0.1.0', '10.255.255.0'],
    ['10.0.0.0/22', 24, '10.0.1.0', '10.0.3.0'],
    ['10.0.0.0/23', 25, '10.0.0.128', '10.0.1.128'],
    ['10.0.0.0/24', 26, '10.0.0.64', '10.0.0.192'],
    ['10.0.0.0/28', 30, '10.0.0.4', '10.0.0.12'],
  ];
  for (const [net, len, min, max] of cases) {
    const c = parseNetworkConfig(JSON.stringify({ Network: net }));
    assert.equal(c.subnetLen, len, net);
    assert.equal(formatIp4(c.subnetMin), min, net);
    assert.equal(formatIp4(c.subnetMax), max, net);
  }
  assertConfigError('{"Network":"10.0.0.0/29"}', 'Network');
  assertConfigError('{"Network":"10.0.0.0/32"}', 'Network');
});

test('SubnetLen 0 or null means default; explicit values are range-checked', () => {
  assert.equal(parseNetworkConfig('{"Network":"10.0.0.0/16","SubnetLen":0}').subnetLen, 24);
  assert.equal(parseNetworkConfig('{"Network":"10.0.0.0/16","SubnetLen":null}').subnetLen, 24);
  assert.equal(parseNetworkConfig('{"Network":"10.0.0.0/16","SubnetLen":18}').subnetLen, 18);
  assert.equal(parseNetworkConfig('{"Network":"10.0.0.0/16","SubnetLen":30}').subnetLen, 30);
  assertConfigError('{"Network":"10.0.0.0/16","SubnetLen":31}', 'SubnetLen');
  assertConfigError('{"Network":"10.0.0.0/16","SubnetLen":17}', 'SubnetLen'); // fewer than four subnets
  assertConfigError('{"Network":"10.0.0.0/16","SubnetLen":16}', 'SubnetLen');
  assertConfigError('{"Network":"10.0.0.0/16","SubnetLen":-1}', 'SubnetLen');
  assertConfigError('{"Network":"10.0.0.0/16","SubnetLen":24.5}', 'SubnetLen');
  assertConfigError('{"Network":"10.0.0.0/16","SubnetLen":"24"}', 'SubnetLen');
  assertConfigError('{"Network":"10.0.0.0/29","SubnetLen":31}', 'SubnetLen');
});

// --- SubnetMin / SubnetMax ---------------------------------------------------------------------

test('SubnetMin/SubnetMax must be inside Network and aligned; 0.0.0.0 means default', () => {
  const c = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"0.0.0.0","SubnetMax":"0.0.0.0"}');
  assert.equal(formatIp4(c.subnetMin), '10.244.1.0');
  assert.equal(formatIp4(c.subnetMax), '10.244.255.0');
  // The network address itself is allowed when given explicitly (flannel does too).
  assert.equal(formatIp4(parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"10.244.0.0"}').subnetMin), '10.244.0.0');
  assertConfigError('{"Network":"10.244.0.0/16","SubnetMin":"10.245.0.0"}', 'SubnetMin');
  assertConfigError('{"Network":"10.244.0.0/16","SubnetMax":"10.243.255.0"}', 'SubnetMax');
  assertConfigError('{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.128"}', 'SubnetMin');
  assertConfigError('{"Network":"10.244.0.0/16","SubnetMax":"10.244.9.1"}', 'SubnetMax');
  assertConfigError('{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.8.0"}', 'SubnetMin');
  assertConfigError('{"Network":"10.244.0.0/16","SubnetMin":"10.244.1"}', 'SubnetMin');
  assertConfigError('{"Network":"10.244.0.0/16","SubnetMax":42}', 'SubnetMax');
});

test('SubnetMin above SubnetMax is accepted, as flannel does (it just has no free subnet)', () => {
  const c = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.3.0"}');
  assert.ok(c.subnetMin > c.subnetMax);
});

// --- Network -------------------------------------------------------------------------------------

test('Network is required, IPv4, non-empty; host bits are masked', () => {
  assertConfigError('{}', 'Network');
  assertConfigError('{"Network":null}', 'Network');
  assertConfigError('{"Network":""}', 'Network');
  assertConfigError('{"Network":"10.244.0.0"}', 'Network');
  assertConfigError('{"Network":"fc00::/48"}', 'Network');
  assertConfigError('{"Network":"0.0.0.0/0"}', 'Network');
  assertConfigError('{"Network":"10.1.2.3/0"}', 'Network'); // masks to 0.0.0.0/0
  assertConfigError('{"Network":16}', 'Network');
  assertConfigError('{"SubnetLen":24}', 'Network');
  const c = parseNetworkConfig('{"Network":"10.244.9.9/16"}');
  assert.equal(formatPrefix4(c.network), '10.244.0.0/16');
});

// --- Backend -------------------------------------------------------------------------------------

test('Backend defaults to vxlan VNI 1 port 8472', () => {
  for (const text of ['{"Network":"10.244.0.0/16"}', '{"Network":"10.244.0.0/16","Backend":null}', '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}']) {
    assert.deepEqual(parseNetworkConfig(text).backend, { type: 'vxlan', vni: 1, port: 8472, directRouting: false });
  }
});

test('Backend fields are validated', () => {
  const base = (backend: unknown): string => JSON.stringify({ Network: '10.244.0.0/16', Backend: backend });
  assert.deepEqual(parseNetworkConfig(base({ Type: 'vxlan', VNI: 16777215, Port: 4789 })).backend, { type: 'vxlan', vni: 16777215, port: 4789, directRouting: false });
  assert.deepEqual(parseNetworkConfig(base({ type: 'vxlan', vni: 7, port: 65535 })).backend, { type: 'vxlan', vni: 7, port: 65535, directRouting: false });
  // Port 0 is flannel's "let the kernel choose", and the kernel's VXLAN default is 8472.
  assert.deepEqual(parseNetworkConfig(base({ Type: 'vxlan', Port: 0 })).backend, { type: 'vxlan', vni: 1, port: 8472, directRouting: false });
  assert.deepEqual(parseNetworkConfig(base({ Type: 'vxlan', DirectRouting: true })).backend, { type: 'vxlan', vni: 1, port: 8472, directRouting: true });
  assertConfigError(base({ Type: 'vxlan', DirectRouting: 'yes' }), 'Backend.DirectRouting');
  // flannel's host-gw: no options (extra fields are ignored, as Go's encoding/json does).
  assert.deepEqual(parseNetworkConfig(base({ Type: 'host-gw' })).backend, { type: 'host-gw' });
  assert.deepEqual(parseNetworkConfig(base({ Type: 'host-gw', VNI: 3 })).backend, { type: 'host-gw' });
  assertConfigError(base({ Type: 'udp' }), 'Backend.Type');
  assertConfigError(base({ Type: 'HOST-GW' }), 'Backend.Type');
  assertConfigError(base({ Type: 'VXLAN' }), 'Backend.Type');
  assertConfigError(base({ VNI: 2 }), 'Backend.Type');
  assertConfigError(base({}), 'Backend.Type');
  assertConfigError(base({ Type: 'vxlan', VNI: 0 }), 'Backend.VNI');
  assertConfigError(base({ Type: 'vxlan', VNI: 16777216 }), 'Backend.VNI');
  assertConfigError(base({ Type: 'vxlan', VNI: -3 }), 'Backend.VNI');
  assertConfigError(base({ Type: 'vxlan', VNI: '1' }), 'Backend.VNI');
  assertConfigError(base({ Type: 'vxlan', VNI: 1.5 }), 'Backend.VNI');
  assertConfigError(base({ Type: 'vxlan', Port: 65536 }), 'Backend.Port');
  assertConfigError(base({ Type: 'vxlan', Port: -1 }), 'Backend.Port');
  assertConfigError(base({ Type: 'vxlan', Port: '8472' }), 'Backend.Port');
  assertConfigError(base('vxlan'), 'Backend');
  assertConfigError(base(['vxlan']), 'Backend');
});

test('unknown fields are ignored', () => {
  const c = parseNetworkConfig(
    JSON.stringify({
      Network: '10.244.0.0/16',
      EnableIPv6: false,
      IPv6Network: 'fc00::/48',
      Comment: 'hello',
      Backend: { Type: 'vxlan', VNI: 3, DirectRouting: true /* known since DirectRouting */, GBP: false, MTU: 1400 },
    }),
  );
  assert.deepEqual(c.backend, { type: 'vxlan', vni: 3, port: 8472, directRouting: true });
});

test('case-insensitive keys: the last matching key wins, like Go encoding/json', () => {
  const c = parseNetworkConfig('{"network":"10.1.0.0/16","NETWORK":"10.2.0.0/16"}');
  assert.equal(formatPrefix4(c.network), '10.2.0.0/16');
});

test('invalid JSON or a non-object reports field "(json)"', () => {
  const err = assertConfigError('{"Network":', '(json)');
  assert.ok(err.cause instanceof SyntaxError);
  assertConfigError('', '(json)');
  assertConfigError('[]', '(json)');
  assertConfigError('null', '(json)');
  assertConfigError('"10.244.0.0/16"', '(json)');
});

test('formatNetworkConfig spells out the defaults and parses back to the same config', () => {
  const c = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
  const text = formatNetworkConfig(c);
  assert.equal(text, '{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMin":"10.244.1.0","SubnetMax":"10.244.255.0","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}');
  assert.deepEqual(parseNetworkConfig(text), c);
});
