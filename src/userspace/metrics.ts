// /metrics for the userspace datapath. The native loop keeps cumulative counters; they are
// sampled at scrape time (a collector) and fed to Prometheus counters as deltas, so nothing
// runs per packet on the JS thread. Every drop reason is pre-initialised to 0 so alerts on
// rate(twill_userspace_drops_total[5m]) have a series before the first drop.
import type { Metrics } from '../observe/metrics';
import { RX_DROP_REASONS, TX_DROP_REASONS, type NativeStats } from './native';

export function registerUserspaceMetrics(m: Metrics, getStats: () => NativeStats | undefined): void {
  const frames = m.counter('twill_userspace_frames_total', 'Frames forwarded by the userspace VXLAN datapath (tx: TAP to peers, rx: peers to TAP).', ['direction']);
  const bytes = m.counter('twill_userspace_bytes_total', 'Inner Ethernet frame bytes forwarded by the userspace VXLAN datapath.', ['direction']);
  const drops = m.counter('twill_userspace_drops_total', 'Frames or datagrams the userspace VXLAN datapath dropped, by direction and reason.', ['direction', 'reason']);
  const syscalls = m.counter('twill_userspace_syscalls_total', 'I/O calls of the userspace datapath loop, by operation (frames per call shows the batching).', ['op']);
  const offload = m.counter('twill_userspace_offload_total', 'TCP superframes segmented on send (tso) and frames merged on receive (gro).', ['kind']);

  for (const direction of ['tx', 'rx']) {
    frames.inc({ direction }, 0);
    bytes.inc({ direction }, 0);
  }
  for (const reason of TX_DROP_REASONS) drops.inc({ direction: 'tx', reason }, 0);
  for (const reason of RX_DROP_REASONS) drops.inc({ direction: 'rx', reason }, 0);

  const seen = new Map<string, number>();
  // Counters only go up; a new native handle (values below what we saw) restarts from 0.
  const delta = (key: string, value: number): number => {
    const prev = seen.get(key) ?? 0;
    seen.set(key, value);
    return value >= prev ? value - prev : value;
  };

  m.addCollector(() => {
    const s = getStats();
    if (!s) return;
    frames.inc({ direction: 'tx' }, delta('ftx', s.txFrames));
    frames.inc({ direction: 'rx' }, delta('frx', s.rxFrames));
    bytes.inc({ direction: 'tx' }, delta('btx', s.txBytes));
    bytes.inc({ direction: 'rx' }, delta('brx', s.rxBytes));
    for (const reason of TX_DROP_REASONS) drops.inc({ direction: 'tx', reason }, delta(`dtx:${reason}`, s.drops.tx[reason] ?? 0));
    for (const reason of RX_DROP_REASONS) drops.inc({ direction: 'rx', reason }, delta(`drx:${reason}`, s.drops.rx[reason] ?? 0));
    syscalls.inc({ op: 'tap_read' }, delta('tap_read', s.tapReads));
    syscalls.inc({ op: 'tap_write' }, delta('tap_write', s.tapWrites));
    syscalls.inc({ op: 'udp_send' }, delta('udp_send', s.udpSendCalls));
    syscalls.inc({ op: 'udp_recv' }, delta('udp_recv', s.udpRecvCalls));
    offload.inc({ kind: 'tso' }, delta('tso', s.txGsoFrames));
    offload.inc({ kind: 'gro' }, delta('gro', s.rxMergedFrames));
  });
}
