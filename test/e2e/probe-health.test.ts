// Issue 14's end-to-end proof over vxlan (the scenario: test/support/probe-lab.ts): 3 hosts,
// check healthy; one host's underlay bridge port at MTU 1400 → check names it and `mtu`, trace
// fails at the full-size hop (1450-byte pod MTU); restored → healthy; the port down →
// `unreachable`, recovered when it comes back. host-gw: probe-health-host-gw.test.ts.
import { isRoot } from '../support/netns';
import { probeHealthScenario } from '../support/probe-lab';

probeHealthScenario({ backend: 'vxlan', podMtu: 1450 }, !isRoot() ? 'needs root' : false);
