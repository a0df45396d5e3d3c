// `twillctl leases`: the cluster's subnet leases as a table. Pure: etcd access is the caller's.
// Values are read tolerantly (a malformed lease is shown, not hidden: it is what an operator
// is looking for) — the daemon's strict decoder decides what gets programmed.
import { compareSubnetText, formatPrefix4 } from '../ip/ipv4';
import { parseSubnetKey } from '../subnet/lease';
import { formatDuration, formatTable } from './table';

export interface LeaseEntry {
  key: string;
  value: string;
  ttlSeconds: number | null;
}

export interface LeaseRow {
  subnet: string;
  publicIp: string;
  vtepMac: string;
  backend: string;
  /** How peers know this host, by backend: the VTEP MAC (vxlan), the public key (wireguard), '-' (host-gw). */
  identity: string;
  ttlSeconds: number | null;
}

function identityOf(backend: string, data: unknown): string {
  if (backend === 'host-gw') return '-';
  if (backend === 'wireguard') return text(field(data, 'PublicKey'));
  return text(field(data, 'VtepMAC'));
}

function field(obj: unknown, name: string): unknown {
  return typeof obj === 'object' && obj !== null && !Array.isArray(obj) ? (obj as Record<string, unknown>)[name] : undefined;
}

function text(v: unknown): string {
  return typeof v === 'string' && v !== '' ? v : '?';
}

export function leaseRows(prefix: string, entries: readonly LeaseEntry[]): LeaseRow[] {
  const rows: LeaseRow[] = [];
  for (const e of entries) {
    const subnet = parseSubnetKey(prefix, e.key);
    let doc: unknown;
    try {
      doc = JSON.parse(e.value);
    } catch {
      doc = undefined;
    }
    rows.push({
      subnet: subnet ? formatPrefix4(subnet) : `? (${e.key})`,
      publicIp: text(field(doc, 'PublicIP')),
      vtepMac: text(field(field(doc, 'BackendData'), 'VtepMAC')),
      backend: text(field(doc, 'BackendType')),
      identity: identityOf(text(field(doc, 'BackendType')), field(doc, 'BackendData')),
      ttlSeconds: e.ttlSeconds,
    });
  }
  return rows.sort((a, b) => compareSubnetText(a.subnet, b.subnet));
}

export function renderLeases(rows: readonly LeaseRow[]): string {
  if (rows.length === 0) return 'no subnet leases\n';
  return formatTable(
    ['SUBNET', 'PUBLIC IP', 'VTEP MAC / KEY', 'BACKEND', 'TTL LEFT'],
    rows.map((r) => [r.subnet, r.publicIp, r.identity, r.backend, r.ttlSeconds === null ? 'no lease' : formatDuration(r.ttlSeconds)]),
  );
}
