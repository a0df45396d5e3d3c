// The WireGuard drivers' own counters (their convergence loop runs beside the reconciler's).
import type { Metrics } from '../../observe/metrics';
import type { WgSyncStats } from './wg-driver';

export function registerWireguardMetrics(m: Metrics, stats: () => WgSyncStats): void {
  const changes = m.counter('twill_wireguard_peer_changes_total', 'WireGuard peers written (added or changed) and removed on the device, by op.', ['op']);
  const failures = m.counter('twill_wireguard_sync_failures_total', 'WireGuard convergence passes that failed (UAPI or generic netlink), retried on the next tick.');
  const seen: WgSyncStats = { syncs: 0, writes: 0, deletes: 0, failures: 0 };
  changes.inc({ op: 'write' }, 0);
  changes.inc({ op: 'remove' }, 0);
  failures.inc({}, 0);
  m.addCollector(() => {
    const s = stats();
    changes.inc({ op: 'write' }, s.writes - seen.writes);
    changes.inc({ op: 'remove' }, s.deletes - seen.deletes);
    failures.inc({}, s.failures - seen.failures);
    Object.assign(seen, s);
  });
}
