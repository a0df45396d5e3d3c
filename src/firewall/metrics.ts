// /metrics for the nftables table: foreign VXLAN datagrams dropped (sampled from the driver at
// scrape time, fed as deltas), and the nftables series of the shared drift and error counters
// pre-initialised so alerts have a series before the first event.
import type { DaemonMetrics, Metrics } from '../observe/metrics';
import type { FirewallDriver } from './driver';

export const FIREWALL_KIND = 'nftables';

export function registerFirewallMetrics(m: Metrics, dm: DaemonMetrics, driver: FirewallDriver): void {
  const dropped = m.counter('twill_vxlan_foreign_dropped_total', 'VXLAN datagrams dropped because their source is not a peer (nftables set vxlan_peers).');
  let seen = 0;
  m.addCollector(() => {
    const now = driver.foreignDropped;
    dropped.inc(now - seen);
    seen = now;
  });
  dm.driftRepaired.inc({ kind: FIREWALL_KIND }, 0);
  dm.dataplaneErrors.inc({ kind: FIREWALL_KIND }, 0);
  driver.on('drift', () => dm.driftRepaired.inc({ kind: FIREWALL_KIND }));
  driver.on('failed', () => dm.dataplaneErrors.inc({ kind: FIREWALL_KIND }));
}
