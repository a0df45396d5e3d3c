// twill's nftables table in a throwaway namespace: created, idempotent, repaired after drift
// (events and the periodic net), removed with --ip-masq=false, the peer set following joins
// and leaves one member at a time, and a foreign table untouched by every twill operation.
// `nft -j` run here is the independent oracle.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { FirewallDriver } from '../../src/firewall/driver';
import { Nft } from '../../src/firewall/nft';
import type { FirewallSpec } from '../../src/firewall/rules';
import { createLogger } from '../../src/observe/log';
import { isRoot, Netns, sh, waitFor } from '../support/netns';
import { chains, nftJson, ownTable, peerSet, type Obj } from '../support/nft-table';

const skip = !isRoot() ? 'needs root' : false;
const spaces: Netns[] = [];
after(() => spaces.forEach((n) => n.delete()));

function nft(ns: Netns, script: string): void {
  sh('ip', ['netns', 'exec', ns.name, 'sh', '-c', `printf '%s\\n' "$0" | nft -f -`, script]);
}

function handles(ns: Netns): string {
  return JSON.stringify(ownTable(ns).filter((o) => o['rule'] || o['chain']).map((o) => (o['rule'] ?? o['chain']).handle));
}

const FOREIGN = `table inet foreign {
  set allowed { type ipv4_addr; elements = { 192.0.2.1 } }
  chain pass_fwd { type filter hook forward priority 10; policy accept; ip saddr @allowed counter accept; }
  chain post { type nat hook postrouting priority 50; policy accept; ip daddr 198.51.100.0/24 masquerade; }
  chain helper { ip saddr 10.0.0.0/8 return; }
}`;

function foreign(ns: Netns): string {
  return JSON.stringify(nftJson(ns, 'list', 'table', 'inet', 'foreign'));
}

function spec(peers: string[], ipMasq = true): FirewallSpec {
  return { network: '10.244.0.0/16', podSubnet: '10.244.3.0/24', ipMasq, vxlan: { port: 8472, peers: new Set(peers) } };
}

function setup(tag: string, opts: { events?: boolean; checkIntervalMs?: number } = {}) {
  const ns = Netns.create(tag);
  spaces.push(ns);
  const out = new PassThrough();
  const lines: Obj[] = [];
  out.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Obj)));
  const driver = new FirewallDriver(new Nft(ns.path), createLogger('debug', out), { checkIntervalMs: opts.checkIntervalMs ?? 60_000, events: opts.events ?? true });
  const drifts: string[] = [];
  driver.on('drift', (r) => drifts.push(r));
  return { ns, driver, drifts, lines };
}


test('created, idempotent, foreign table untouched; off removes the masquerade rules', { skip }, async () => {
  const { ns, driver } = setup('fwa', { events: false });
  nft(ns, FOREIGN);
  const foreignBefore = foreign(ns);
  driver.setDesired(spec(['172.30.0.12']));
  assert.deepEqual(chains(ns), ['forward', 'postrouting', 'vxlan_in']);
  assert.deepEqual(peerSet(ns), ['172.30.0.12']);
  const h = handles(ns);
  driver.setDesired(spec(['172.30.0.12'])); // equal spec, new object: nothing written
  assert.equal(handles(ns), h);
  await driver.check();
  assert.equal(handles(ns), h, 'a check of a correct table changes nothing');
  assert.equal(foreign(ns), foreignBefore);

  // A second driver (a restarted daemon) replaces the table as a whole: one table, same shape.
  const again = new FirewallDriver(new Nft(ns.path), createLogger('silent'), { checkIntervalMs: 60_000, events: false });
  again.setDesired(spec(['172.30.0.12']));
  assert.equal(nftJson(ns, 'list', 'tables').filter((o) => o['table'].name === 'twill').length, 1);
  assert.deepEqual(chains(ns), ['forward', 'postrouting', 'vxlan_in']);

  again.setDesired(spec(['172.30.0.12'], false));
  assert.deepEqual(chains(ns), ['forward', 'vxlan_in']);
  assert.doesNotMatch(sh('ip', ['netns', 'exec', ns.name, 'nft', 'list', 'table', 'ip', 'twill']), /masquerade|nat/);
  assert.equal(foreign(ns), foreignBefore, 'the foreign table survived every twill operation');
  driver.stop();
  again.stop();
});

test('the peer set follows joins and leaves member by member (no table replace)', { skip }, async () => {
  const { ns, driver } = setup('fwp', { events: false });
  nft(ns, FOREIGN);
  const foreignBefore = foreign(ns);
  driver.setDesired(spec(['172.30.0.12', '172.30.0.13']));
  const h = handles(ns);
  driver.setDesired(spec(['172.30.0.12', '172.30.0.13', '172.30.0.14']));
  assert.deepEqual(peerSet(ns), ['172.30.0.12', '172.30.0.13', '172.30.0.14']);
  driver.setDesired(spec(['172.30.0.13', '172.30.0.14']));
  assert.deepEqual(peerSet(ns), ['172.30.0.13', '172.30.0.14']);
  assert.equal(handles(ns), h, 'rules and chains kept: only members changed');
  // 100 joins one by one, each a member added over netlink before setDesired returns.
  const peers = ['172.30.0.13', '172.30.0.14'];
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) {
    peers.push(`172.31.0.${i + 1}`);
    driver.setDesired(spec(peers));
  }
  const perJoin = (performance.now() - t0) / 100;
  assert.equal(peerSet(ns).length, 102);
  assert.equal(handles(ns), h);
  console.log(`# one peer join in the set: ${perJoin.toFixed(3)} ms (synchronous, netlink)`);
  driver.setDesired(spec(['172.30.0.13', '172.30.0.14']));
  assert.deepEqual(peerSet(ns), ['172.30.0.13', '172.30.0.14']);
  // A member removed behind our back makes the next delete fail: the table is replaced instead.
  nft(ns, 'delete element ip twill vxlan_peers { 172.30.0.13 }');
  driver.setDesired(spec(['172.30.0.14']));
  assert.deepEqual(peerSet(ns), ['172.30.0.14']);
  assert.equal(foreign(ns), foreignBefore);
  driver.stop();
});

test('nft flush ruleset and iptables-restore: the table is back within 1 s (nf_tables events), counted; a foreign forward drop is warned about once', { skip }, async () => {
  const { ns, driver, drifts, lines } = setup('fwd');
  driver.start();
  driver.setDesired(spec(['172.30.0.12']));
  await driver.check(); // fingerprint taken
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const before = drifts.length;
    sh('ip', ['netns', 'exec', ns.name, 'nft', 'flush', 'ruleset']);
    times.push(await waitFor(() => chains(ns).length === 3 && peerSet(ns).length === 1, 1000, 'table restored after flush ruleset', 10));
    await waitFor(() => drifts.length === before + 1, 1000, 'drift counted', 10);
  }
  // An edit right after a repair (before any check ran) is still drift, never the new truth.
  sh('ip', ['netns', 'exec', ns.name, 'nft', 'flush', 'ruleset']);
  await waitFor(() => chains(ns).length === 3, 1000, 'table restored', 10);
  nft(ns, 'flush chain ip twill postrouting\ndelete chain ip twill postrouting');
  await waitFor(() => chains(ns).length === 3, 1000, 'chain deleted right after a repair is restored', 10);
  // iptables-restore (iptables-nft) with Docker's FORWARD policy: our table stays, a warning says what to change.
  sh('ip', ['netns', 'exec', ns.name, 'sh', '-c', 'printf "*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD DROP [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n" | iptables-restore']);
  await waitFor(() => lines.some((l) => l['chain'] === 'FORWARD' && /forward policy is drop/.test(l['msg'])), 1000, 'forward drop warned', 10);
  sh('ip', ['netns', 'exec', ns.name, 'sh', '-c', 'printf "*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD DROP [0:0]\\n:OUTPUT ACCEPT [0:0]\\n-A FORWARD -j ACCEPT\\nCOMMIT\\n" | iptables-restore']);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(lines.filter((l) => l['chain'] === 'FORWARD' && /forward policy is drop/.test(l['msg'])).length, 1, 'warned once');
  assert.deepEqual(chains(ns), ['forward', 'postrouting', 'vxlan_in']);
  // Someone edits a rule in our table: found and replaced.
  const before = drifts.length;
  nft(ns, 'add rule ip twill forward ip saddr 192.0.2.0/24 drop');
  await waitFor(() => drifts.length === before + 1, 1000, 'edited table replaced', 10);
  assert.doesNotMatch(sh('ip', ['netns', 'exec', ns.name, 'nft', 'list', 'table', 'ip', 'twill']), /192\.0\.2\.0/);
  console.log(`# restored after nft flush ruleset in ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
  driver.stop();
});

test('without events, the periodic check still repairs a deleted table; the repair leaves a foreign table alone', { skip }, async () => {
  const { ns, driver, drifts } = setup('fwn', { events: false, checkIntervalMs: 200 });
  nft(ns, FOREIGN);
  const foreignBefore = foreign(ns);
  driver.start();
  driver.setDesired(spec([]));
  sh('ip', ['netns', 'exec', ns.name, 'nft', 'delete', 'table', 'ip', 'twill']);
  await waitFor(() => chains(ns).length === 3, 2000, 'table restored by the periodic check', 10);
  assert.deepEqual(drifts, ['table missing']);
  assert.equal(foreign(ns), foreignBefore);
  driver.stop();
});
