import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FirewallSpecError, peerChanges, renderRemove, renderReplace, renderTable, sameShape, type FirewallSpec } from '../../src/firewall/rules';
import { forwardDropAdvice, parseRuleset } from '../../src/firewall/listing';
import { driftReason, expectedChains } from '../../src/firewall/driver';
import { newgenPid } from '../../src/firewall/events';
import { encodeSetBatch } from '../../src/firewall/set-elements';
import { decodeMessages } from '../../src/netlink/frame';

const base: FirewallSpec = {
  network: '10.244.0.0/16',
  podSubnet: '10.244.7.0/24',
  ipMasq: true,
  vxlan: { port: 8472, peers: new Set(['172.30.0.13', '172.30.0.12']) },
};

test('on: masquerade with flannel semantics, forward accepts, VXLAN only from peers', () => {
  assert.equal(
    renderTable(base),
    [
      'table ip twill {',
      '  set vxlan_peers { type ipv4_addr; elements = { 172.30.0.12, 172.30.0.13 } }',
      '  counter vxlan_foreign { }',
      '  chain vxlan_in {',
      '    type filter hook prerouting priority raw; policy accept;',
      '    udp dport 8472 fib daddr type local ip saddr != @vxlan_peers counter name "vxlan_foreign" drop',
      '  }',
      '  chain forward {',
      '    type filter hook forward priority filter; policy accept;',
      '    ip saddr 10.244.0.0/16 accept',
      '    ip daddr 10.244.0.0/16 accept',
      '  }',
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      '    meta mark & 0x00004000 == 0x00004000 return',
      '    ip saddr 10.244.7.0/24 ip daddr 10.244.0.0/16 return',
      '    ip saddr 10.244.0.0/16 ip daddr 10.244.7.0/24 return',
      '    ip saddr != 10.244.0.0/16 ip daddr 10.244.7.0/24 return',
      '    ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random',
      '    ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
});

test('off: no nat chain and no masquerade; the VXLAN filter and forward accepts stay', () => {
  const t = renderTable({ ...base, ipMasq: false });
  assert.doesNotMatch(t, /masquerade|nat|postrouting/);
  assert.match(t, /chain vxlan_in/);
  assert.match(t, /chain forward/);
});

test('without the kernel VXLAN device there is no filter; an empty peer set has no elements clause', () => {
  assert.doesNotMatch(renderTable({ ...base, vxlan: null }), /vxlan|8472/);
  assert.match(renderTable({ ...base, vxlan: { port: 4789, peers: new Set() } }), /set vxlan_peers \{ type ipv4_addr; \}\n[^]*udp dport 4789 /);
});

test('replace is one transaction that creates, deletes and recreates only our table', () => {
  const r = renderReplace(base);
  assert.ok(r.startsWith('table ip twill {}\ndelete table ip twill\ntable ip twill {\n'));
  assert.equal(renderRemove(), 'table ip twill {}\ndelete table ip twill\n');
  for (const line of r.split('\n')) assert.doesNotMatch(line, /flush ruleset|table (inet|ip6|ip (?!twill))/);
});

test('input is validated before it reaches a script (no injection through a lease)', () => {
  assert.throws(() => renderTable({ ...base, network: '10.244.0.0/16; flush ruleset' }), FirewallSpecError);
  assert.throws(() => renderTable({ ...base, vxlan: { port: 8472, peers: new Set(['1.2.3.4 } ; flush ruleset']) } }), FirewallSpecError);
  assert.throws(() => renderTable({ ...base, vxlan: { port: 0, peers: new Set() } }), FirewallSpecError);
  // A host address with bits below the prefix is normalised to the network.
  assert.match(renderTable({ ...base, podSubnet: '10.244.7.1/24' }), /ip saddr 10\.244\.7\.0\/24 ip daddr/);
});

test('peer changes: only what joined is added and what left is deleted', () => {
  assert.deepEqual(peerChanges(new Set(['172.30.0.12', '172.30.0.13']), new Set(['172.30.0.14', '172.30.0.13', '172.30.0.10'])), { added: ['172.30.0.10', '172.30.0.14'], removed: ['172.30.0.12'] });
  assert.deepEqual(peerChanges(new Set(['172.30.0.12']), new Set(['172.30.0.12'])), { added: [], removed: [] });
});

test('same shape: peers may differ, nothing else', () => {
  assert.ok(sameShape(base, { ...base, vxlan: { port: 8472, peers: new Set() } }));
  assert.ok(!sameShape(base, { ...base, ipMasq: false }));
  assert.ok(!sameShape(base, { ...base, vxlan: null }));
  assert.ok(!sameShape(base, { ...base, vxlan: { port: 4789, peers: new Set() } }));
  assert.ok(!sameShape(base, { ...base, podSubnet: '10.244.8.0/24' }));
});

const listing = (extra: object[] = [], peers: unknown[] = ['172.30.0.12', '172.30.0.13'], packets = 5) =>
  JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'ip', name: 'twill', handle: 3 } },
      { counter: { family: 'ip', name: 'vxlan_foreign', table: 'twill', handle: 4, packets, bytes: 300 } },
      { set: { family: 'ip', name: 'vxlan_peers', table: 'twill', type: 'ipv4_addr', handle: 5, elem: peers } },
      { chain: { family: 'ip', table: 'twill', name: 'vxlan_in', handle: 1, type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' } },
      { chain: { family: 'ip', table: 'twill', name: 'forward', handle: 2, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
      { chain: { family: 'ip', table: 'twill', name: 'postrouting', handle: 3, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
      { rule: { family: 'ip', table: 'twill', chain: 'forward', handle: 7, expr: [{ counter: { packets: 9, bytes: 9 } }, { accept: null }] } },
      ...extra,
    ],
  });

test('listing: our table, its peers and counter; fingerprint ignores handles, counters and members', () => {
  const f = parseRuleset(listing());
  assert.equal(f.present, true);
  assert.deepEqual([...f.peers!].sort(), ['172.30.0.12', '172.30.0.13']);
  assert.equal(f.foreignDropped, 5);
  assert.equal(parseRuleset(listing([], ['172.30.0.99'], 77)).fingerprint, f.fingerprint);
  assert.equal(parseRuleset(listing([], [{ elem: { val: '172.30.0.12', counter: {} } }])).peers!.has('172.30.0.12'), true);
  const other = listing([{ rule: { family: 'ip', table: 'twill', chain: 'forward', handle: 8, expr: [{ drop: null }] } }]);
  assert.notEqual(parseRuleset(other).fingerprint, f.fingerprint);
  const none = parseRuleset(JSON.stringify({ nftables: [{ metainfo: {} }, { table: { family: 'ip', name: 'filter', handle: 1 } }] }));
  assert.equal(none.present, false);
  assert.equal(none.peers, null);
  assert.throws(() => parseRuleset('not json'), { code: 'ERR_NFT_LISTING' });
});

test('listing: another table with a forward base chain of policy drop is found, with advice', () => {
  const f = parseRuleset(
    listing([
      { chain: { family: 'ip', table: 'filter', name: 'FORWARD', handle: 1, type: 'filter', hook: 'forward', prio: 0, policy: 'drop' } },
      { chain: { family: 'inet', table: 'fw', name: 'fwd', handle: 1, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
      { chain: { family: 'ip', table: 'filter', name: 'DOCKER', handle: 2 } },
    ]),
  );
  assert.deepEqual(f.forwardDrops, [{ family: 'ip', table: 'filter', chain: 'FORWARD' }]);
  const advice = forwardDropAdvice(f.forwardDrops[0]!, '10.244.0.0/16');
  assert.match(advice, /nft insert rule ip filter FORWARD ip saddr 10\.244\.0\.0\/16 accept/);
  assert.match(advice, /iptables -I FORWARD -d 10\.244\.0\.0\/16 -j ACCEPT/);
});

test('drift: missing table, different members, different rules; none when only counters moved', () => {
  const f = parseRuleset(listing());
  assert.equal(driftReason(f, base, f.fingerprint), null);
  assert.equal(driftReason(f, base, undefined), null);
  assert.equal(driftReason(parseRuleset(listing([], [], 999)), base, f.fingerprint), 'peer set differs');
  assert.equal(driftReason(parseRuleset(JSON.stringify({ nftables: [] })), base, f.fingerprint), 'table missing');
  assert.equal(driftReason(f, base, 'something else'), 'rules differ');
  assert.equal(driftReason(f, { ...base, vxlan: null }, f.fingerprint), 'chains differ', 'a vxlan_in chain too many');
  assert.equal(driftReason(f, { ...base, ipMasq: false }, undefined), 'chains differ', 'a postrouting chain too many');
  assert.deepEqual(f.chains, ['forward', 'postrouting', 'vxlan_in']);
  assert.deepEqual(expectedChains({ ...base, vxlan: null, ipMasq: false }), ['forward']);
});

test('NEWGEN: the committing process is read from NFTA_GEN_PROC_PID; other messages are not transactions', () => {
  const data = Buffer.alloc(4 + 8 + 8);
  data.writeUInt16LE(8, 4); // NFTA_GEN_ID
  data.writeUInt16LE(1, 6);
  data.writeUInt32BE(42, 8);
  data.writeUInt16LE(8, 12); // NFTA_GEN_PROC_PID
  data.writeUInt16LE(2, 14);
  data.writeUInt32BE(4321, 16);
  assert.equal(newgenPid({ type: (10 << 8) | 15, flags: 0, seq: 0, data }), 4321);
  assert.equal(newgenPid({ type: (10 << 8) | 15, flags: 0, seq: 0, data: data.subarray(0, 12) }), 0);
  assert.equal(newgenPid({ type: (10 << 8) | 0, flags: 0, seq: 0, data }), undefined);
});

test('set member batch: BATCH_BEGIN, NEWSETELEM (create, ack), DELSETELEM (ack), BATCH_END; keys in network order', () => {
  const { buf, acked } = encodeSetBatch(100, 'twill', 'vxlan_peers', [
    { op: 'add', addrs: ['172.30.0.12', '10.0.0.1'] },
    { op: 'delete', addrs: ['172.30.0.13'] },
  ]);
  const msgs = decodeMessages(buf);
  assert.deepEqual(msgs.map((m) => [m.type, m.seq]), [[0x10, 100], [(10 << 8) | 12, 101], [(10 << 8) | 14, 102], [0x11, 103]]);
  assert.deepEqual(acked, [101, 102]);
  assert.equal(msgs[0]!.data.readUInt16BE(2), 10, 'BATCH_BEGIN names the nftables subsystem');
  assert.equal(msgs[1]!.flags, 0x1 | 0x4 | 0x400);
  assert.equal(msgs[2]!.flags, 0x1 | 0x4);
  assert.equal(msgs[1]!.data[0], 2, 'NFPROTO_IPV4');
  assert.ok(msgs[1]!.data.includes(Buffer.from('twill\0')) && msgs[1]!.data.includes(Buffer.from('vxlan_peers\0')));
  assert.ok(msgs[1]!.data.includes(Buffer.from([172, 30, 0, 12])) && msgs[1]!.data.includes(Buffer.from([10, 0, 0, 1])));
  assert.ok(msgs[2]!.data.includes(Buffer.from([172, 30, 0, 13])));
  // Nothing to change: no element message at all.
  assert.deepEqual(encodeSetBatch(1, 't', 's', [{ op: 'add', addrs: [] }]).acked, []);
  assert.throws(() => encodeSetBatch(1, 't', 's', [{ op: 'add', addrs: ['not-an-ip'] }]), { code: 'ERR_NFT' });
});

/** The same listing as `nft -t -j` prints it: sets without their "elem" key. */
const terse = (extra: object[] = []) => {
  const doc = JSON.parse(listing(extra)) as { nftables: Record<string, Record<string, unknown>>[] };
  for (const o of doc.nftables) if (o['set']) delete o['set']['elem'];
  return JSON.stringify(doc);
};

test('terse listing: the set is there, its members unknown; the fingerprint equals the full listing\'s', () => {
  const full = parseRuleset(listing());
  const t = parseRuleset(terse(), false);
  assert.equal(t.peerSet, true);
  assert.equal(t.peers, null);
  assert.equal(t.fingerprint, full.fingerprint);
  assert.deepEqual(t.chains, full.chains);
  assert.equal(t.foreignDropped, 5);
  // A full listing read as terse does not judge members either.
  assert.equal(parseRuleset(listing([], ['172.30.0.99']), false).peers, null);
  assert.equal(parseRuleset(terse(), true).peers!.size, 0, 'a terse listing read as full: an empty set');
});

test('drift on a terse listing: members not judged, all else is', () => {
  const f = parseRuleset(listing());
  const t = parseRuleset(terse(), false);
  assert.equal(driftReason(t, base, f.fingerprint), null);
  assert.equal(driftReason(t, { ...base, vxlan: { port: 8472, peers: new Set(['192.0.2.1']) } }, f.fingerprint), null);
  const noSet = JSON.parse(terse()) as { nftables: Record<string, unknown>[] };
  noSet.nftables = noSet.nftables.filter((o) => !o['set']);
  assert.equal(driftReason(parseRuleset(JSON.stringify(noSet), false), base, undefined), 'peer set missing');
  assert.equal(driftReason(parseRuleset(JSON.stringify({ nftables: [] }), false), base, f.fingerprint), 'table missing');
  assert.equal(driftReason(t, base, 'something else'), 'rules differ');
  const dropped = parseRuleset(terse([{ rule: { family: 'ip', table: 'twill', chain: 'forward', handle: 8, expr: [{ drop: null }] } }]), false);
  assert.equal(driftReason(dropped, base, f.fingerprint), 'rules differ');
  assert.equal(driftReason(t, { ...base, ipMasq: false }, undefined), 'chains differ');
});
