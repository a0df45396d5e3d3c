import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/network';
import { formatPrefix4, parsePrefix4, prefixesOverlap, type Prefix4 } from '../../src/ip/ipv4';
import { candidateCount, candidateSubnets, chooseFreeSubnet, describeRange, FREE_WINDOW, isSubnetCompatible } from '../../src/subnet/allocator';

const small = parseNetworkConfig('{"Network":"10.5.0.0/24","SubnetLen":28}'); // 10.5.0.16 .. 10.5.0.240: 15 subnets (only the first is skipped)
const big = parseNetworkConfig('{"Network":"10.0.0.0/8"}'); // 65535 /24s

function names(ps: Iterable<Prefix4>): string[] {
  return Array.from(ps, formatPrefix4);
}

test('candidates run from SubnetMin to SubnetMax inclusive, in order', () => {
  const all = names(candidateSubnets(small));
  assert.equal(all.length, 15);
  assert.equal(candidateCount(small), 15);
  assert.equal(all[0], '10.5.0.16/28');
  assert.equal(all[14], '10.5.0.240/28');
  assert.equal(new Set(all).size, 15);
  const tiny = parseNetworkConfig('{"Network":"10.9.0.0/28"}');
  assert.deepEqual(names(candidateSubnets(tiny)), ['10.9.0.4/30', '10.9.0.8/30', '10.9.0.12/30']);
});

test('a /8 cut into /24s is iterated lazily', () => {
  assert.equal(candidateCount(big), 65535);
  const it = candidateSubnets(big);
  assert.equal(formatPrefix4(it.next().value as Prefix4), '10.0.1.0/24');
  let n = 1;
  let last: Prefix4 | undefined;
  for (const p of it) {
    n++;
    last = p;
  }
  assert.equal(n, 65535);
  assert.equal(formatPrefix4(last!), '10.255.255.0/24');
});

test('the top of the address space does not wrap', () => {
  const c = parseNetworkConfig('{"Network":"255.255.255.0/24"}');
  assert.deepEqual(names(candidateSubnets(c)), ['255.255.255.64/26', '255.255.255.128/26', '255.255.255.192/26']);
});

test('SubnetMin above SubnetMax gives no candidates', () => {
  const c = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.3.0"}');
  assert.equal(candidateCount(c), 0);
  assert.equal(chooseFreeSubnet(c, [], Math.random), null);
});

test('chooseFreeSubnet picks among free candidates using the random source', () => {
  const taken = [parsePrefix4('10.5.0.16/28'), parsePrefix4('10.5.0.48/28')];
  assert.equal(formatPrefix4(chooseFreeSubnet(small, taken, () => 0)!), '10.5.0.32/28');
  assert.equal(formatPrefix4(chooseFreeSubnet(small, taken, () => 0.999999)!), '10.5.0.240/28');
  // Out-of-range random values are clamped rather than trusted.
  assert.equal(formatPrefix4(chooseFreeSubnet(small, taken, () => 1)!), '10.5.0.240/28');
  assert.equal(formatPrefix4(chooseFreeSubnet(small, taken, () => -5)!), '10.5.0.32/28');
  assert.equal(formatPrefix4(chooseFreeSubnet(small, taken, () => NaN)!), '10.5.0.32/28');
});

test('chooseFreeSubnet returns null when everything is taken', () => {
  assert.equal(chooseFreeSubnet(small, candidateSubnets(small), Math.random), null);
  // A wider prefix blocks everything inside it.
  assert.equal(chooseFreeSubnet(small, [parsePrefix4('10.5.0.0/24')], Math.random), null);
});

test('taken prefixes of other lengths block what they overlap', () => {
  const taken = [parsePrefix4('10.5.0.0/26')]; // covers .16, .32, .48
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) seen.add(formatPrefix4(chooseFreeSubnet(small, taken, () => i / 12)!));
  assert.equal(seen.size, 12);
  for (const s of seen) assert.ok(!prefixesOverlap(parsePrefix4(s), taken[0]!), s);
});

test('random choice is among the first 100 free subnets, like flannel', () => {
  const top = chooseFreeSubnet(big, [], () => 0.999999)!;
  assert.equal(formatPrefix4(top), '10.0.100.0/24');
  assert.equal(FREE_WINDOW, 100);
  const wider = chooseFreeSubnet(big, [], () => 0.999999, 1000)!;
  assert.equal(formatPrefix4(wider), '10.3.232.0/24');
});

test('many picks without a collision until the range is full', () => {
  const taken: Prefix4[] = [];
  let rng = 12345;
  const random = (): number => {
    rng = (rng * 1103515245 + 12345) % 2 ** 31;
    return rng / 2 ** 31;
  };
  for (;;) {
    const p = chooseFreeSubnet(small, taken, random);
    if (!p) break;
    assert.ok(!taken.some((t) => prefixesOverlap(t, p)));
    taken.push(p);
  }
  assert.equal(taken.length, 15);
});

test('isSubnetCompatible: length, alignment and range', () => {
  const c = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
  assert.ok(isSubnetCompatible(c, parsePrefix4('10.244.7.0/24')));
  assert.ok(isSubnetCompatible(c, parsePrefix4('10.244.255.0/24')));
  assert.ok(!isSubnetCompatible(c, parsePrefix4('10.244.0.0/24'))); // below SubnetMin
  assert.ok(!isSubnetCompatible(c, parsePrefix4('10.244.7.0/25')));
  assert.ok(!isSubnetCompatible(c, { ip: parsePrefix4('10.244.7.0/24').ip + 1, len: 24 }));
  assert.ok(!isSubnetCompatible(c, parsePrefix4('10.245.0.0/24')));
});

test('describeRange names the range for error messages', () => {
  assert.equal(describeRange(small), '10.5.0.16/28 .. 10.5.0.240/28 (15 subnets)');
});
