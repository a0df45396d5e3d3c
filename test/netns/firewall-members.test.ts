// The peer set's members edited by hand (`nft delete element` / `nft add element`) are repaired
// although most periodic checks list the ruleset terse, without members (driver.ts): through
// the nf_tables event the edit itself makes, and without events by the periodic full check
// (every FULL_EVERY-th). `nft -j` run here is the independent oracle.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FirewallDriver, FULL_EVERY } from '../../src/firewall/driver';
import { Nft } from '../../src/firewall/nft';
import type { FirewallSpec } from '../../src/firewall/rules';
import { createLogger } from '../../src/observe/log';
import { isRoot, Netns, sh, waitFor } from '../support/netns';
import { peerSet } from '../support/nft-table';

const skip = !isRoot() ? 'needs root' : false;
const spaces: Netns[] = [];
after(() => spaces.forEach((n) => n.delete()));

const PEERS = ['172.30.0.12', '172.30.0.13', '172.30.0.14'];

function nft(ns: Netns, ...args: string[]): string {
  return sh('ip', ['netns', 'exec', ns.name, 'nft', ...args]);
}

function spec(peers: string[]): FirewallSpec {
  return { network: '10.244.0.0/16', podSubnet: '10.244.3.0/24', ipMasq: true, vxlan: { port: 8472, peers: new Set(peers) } };
}

/** A driver on a fresh namespace whose `nft` counts full and terse ruleset listings. */
function setup(tag: string, opts: { events: boolean; checkIntervalMs: number }) {
  const ns = Netns.create(tag);
  spaces.push(ns);
  const tool = new Nft(ns.path);
  const listings = { full: 0, terse: 0 };
  const list = tool.listRuleset.bind(tool);
  tool.listRuleset = (terse = false) => {
    listings[terse ? 'terse' : 'full']++;
    return list(terse);
  };
  const driver = new FirewallDriver(tool, createLogger('silent'), opts);
  const drifts: string[] = [];
  driver.on('drift', (r) => drifts.push(r));
  return { ns, driver, drifts, listings };
}


test('a member deleted or added by hand is repaired within 1 s through its nf_tables event (periodic net 60 s away)', { skip }, async () => {
  const { ns, driver, drifts } = setup('fwm', { events: true, checkIntervalMs: 60_000 });
  after(() => driver.stop()); // also when an assertion fails: the event socket would keep the process up
  driver.start();
  driver.setDesired(spec(PEERS));
  await driver.check(); // fingerprint taken
  nft(ns, 'delete', 'element', 'ip', 'twill', 'vxlan_peers', '{ 172.30.0.13 }');
  const del = await waitFor(() => peerSet(ns).length === 3, 1000, 'deleted member restored', 10);
  assert.deepEqual(peerSet(ns), PEERS);
  nft(ns, 'add', 'element', 'ip', 'twill', 'vxlan_peers', '{ 192.0.2.77 }');
  const add = await waitFor(() => peerSet(ns).length === 3, 1000, 'added member removed', 10);
  assert.deepEqual(peerSet(ns), PEERS);
  assert.deepEqual(drifts, ['peer set differs', 'peer set differs']);
  console.log(`# member deleted by hand restored in ${del.toFixed(0)} ms, member added by hand removed in ${add.toFixed(0)} ms`);
  driver.stop();
});

test(`without events: most periodic checks are terse, a member edited by hand is repaired by the full one (every ${FULL_EVERY}th)`, { skip }, async () => {
  const interval = 100;
  const { ns, driver, drifts, listings } = setup('fwp', { events: false, checkIntervalMs: interval });
  after(() => driver.stop());
  driver.setDesired(spec(PEERS));
  await driver.check(); // fingerprint taken (an explicit check is a full one)
  assert.deepEqual(listings, { full: 1, terse: 0 });
  driver.start();
  nft(ns, 'delete', 'element', 'ip', 'twill', 'vxlan_peers', '{ 172.30.0.13 }');
  nft(ns, 'add', 'element', 'ip', 'twill', 'vxlan_peers', '{ 192.0.2.77 }');
  const bound = (FULL_EVERY + 4) * interval; // the full check is due at the 6th tick; slack for a busy machine
  const t = await waitFor(() => peerSet(ns).join() === PEERS.join(), bound, 'members repaired by the periodic full check', 10);
  assert.deepEqual(drifts, ['peer set differs']);
  await new Promise((r) => setTimeout(r, FULL_EVERY * interval));
  driver.stop();
  assert.ok(listings.terse >= 2 * (listings.full - 1), `terse listings ${listings.terse}, full ${listings.full}`);
  assert.ok(listings.full >= 2, 'a full periodic check ran');
  console.log(`# without events: repaired in ${t.toFixed(0)} ms (bound ${bound} ms); listings terse ${listings.terse}, full ${listings.full}`);
});
