// Issue 14's end-to-end proof over host-gw (the scenario: test/support/probe-lab.ts): the same
// as over vxlan, with the pod MTU the underlay's (1500), so the bridge port at MTU 1400 drops
// the full-size probes themselves. Probes run between the hosts' <subnet>.0, which host-gw
// keeps on its port-less bridge twill-hostgw; they take host-gw's own routes
// (<peer subnet> via <peer PublicIP> dev eth0), the path pod traffic takes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ipJson, isRoot } from '../support/netns';
import { probeHealthScenario } from '../support/probe-lab';

probeHealthScenario(
  {
    backend: 'host-gw',
    podMtu: 1500,
    afterReady: ({ lab, hosts }) => {
      const subnetOf = (i: number): string => /FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\/24/.exec(fs.readFileSync(lab.subnetFile(hosts[i]!), 'utf8'))![1]!;
      hosts.forEach((h, i) => {
        // The overlay address, alone on its device; host-gw's routes unchanged: one per peer, on the underlay.
        const dev = ipJson<{ mtu: number; addr_info: Array<{ family: string; local: string; prefixlen: number }> }>(h.ns, 'address', 'show', 'dev', 'twill-hostgw');
        assert.deepEqual(dev[0]!.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), [`${subnetOf(i)}.0/32`], h.name);
        assert.equal(dev[0]!.mtu, 1500);
        const routes = ipJson<{ dst: string; gateway?: string; dev: string }>(h.ns, 'route', 'show', 'proto', '113').map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`).sort();
        const want = hosts.flatMap((x, j) => (j === i ? [] : [`${subnetOf(j)}.0/24 via ${x.ip} dev eth0`])).sort();
        assert.deepEqual(routes, want, h.name);
      });
    },
  },
  !isRoot() ? 'needs root' : false,
);
