// `twillctl status`: twilld's readiness and the few metrics an operator looks at first, read
// from its HTTP endpoint. Parsing and rendering are pure; the fetch is in fetchStatus.
import { parseListenAddr } from '../observe/http';
import { TwillError } from '../base/twill-error';

export interface Blocking {
  subject: string;
  error: string;
  next: string;
}

export interface DaemonStatus {
  ready: boolean;
  reasons: string[];
  /** The error in the daemon's way, with its subject and the next step; null when none. */
  blocking: Blocking | null;
  lease: { subnet: string; publicIp: string; vtepMac: string } | null;
  peers: number | null;
  programmed: Record<string, number>;
  etcdErrors: number;
  dataplaneErrors: number;
  driftRepaired: number;
  resyncs: number;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments and malformed lines skipped). */
export function parsePrometheus(body: string): Sample[] {
  const out: Sample[] = [];
  const re = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  for (const line of body.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = re.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export function summarize(readyBody: string, metricsBody: string): DaemonStatus {
  let ready = false;
  let reasons: string[] = [];
  let blocking: Blocking | null = null;
  try {
    const r = JSON.parse(readyBody) as { ready?: unknown; reasons?: unknown; blocking?: Partial<Record<keyof Blocking, unknown>> };
    ready = r.ready === true;
    reasons = Array.isArray(r.reasons) ? r.reasons.map(String) : [];
    const b = r.blocking;
    if (b && typeof b === 'object') blocking = { subject: String(b.subject ?? '?'), error: String(b.error ?? '?'), next: String(b.next ?? '') };
  } catch {
    reasons = ['unreadable /readyz answer'];
  }
  const samples = parsePrometheus(metricsBody);
  const sum = (name: string): number => samples.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
  const info = samples.find((s) => s.name === 'twill_lease_info');
  const peers = samples.find((s) => s.name === 'twill_peers');
  const programmed: Record<string, number> = {};
  for (const s of samples) if (s.name === 'twill_programmed_entries' && s.labels['kind']) programmed[s.labels['kind']] = s.value;
  return {
    ready,
    reasons,
    blocking,
    lease: info ? { subnet: info.labels['subnet'] ?? '?', publicIp: info.labels['public_ip'] ?? '?', vtepMac: info.labels['vtep_mac'] ?? '?' } : null,
    peers: peers ? peers.value : null,
    programmed,
    etcdErrors: sum('twill_etcd_errors_total'),
    dataplaneErrors: sum('twill_dataplane_errors_total'),
    driftRepaired: sum('twill_drift_repaired_total'),
    resyncs: sum('twill_resyncs_total'),
  };
}

export function renderStatus(addr: string, s: DaemonStatus): string {
  const lines = [`twilld at ${addr}: ${s.ready ? 'ready' : 'NOT READY'}`];
  for (const r of s.reasons) lines.push(`  - ${r}`);
  if (s.blocking) {
    lines.push(`  ${(s.ready ? 'warning' : 'blocked by').padEnd(17)}${s.blocking.subject}: ${s.blocking.error}`);
    if (s.blocking.next) lines.push(`  ${'next step'.padEnd(17)}${s.blocking.next}`);
  }
  lines.push(`  lease            ${s.lease ? `${s.lease.subnet}  public IP ${s.lease.publicIp}  VTEP MAC ${s.lease.vtepMac}` : 'none held'}`);
  lines.push(`  peers            ${s.peers ?? '?'}`);
  const kinds = Object.entries(s.programmed).map(([k, v]) => `${k} ${v}`);
  lines.push(`  programmed       ${kinds.length ? kinds.join(', ') : '?'}`);
  lines.push(`  drift repaired   ${s.driftRepaired}   resyncs ${s.resyncs}`);
  lines.push(`  errors           etcd ${s.etcdErrors}, dataplane ${s.dataplaneErrors}`);
  return lines.join('\n') + '\n';
}

/** The URL base for a daemon listen address; "all interfaces" is reached over loopback. */
export function statusBaseUrl(httpAddr: string): string {
  const a = parseListenAddr(httpAddr);
  if (a.host === undefined) return `http://127.0.0.1:${a.port}`;
  return a.host.includes(':') ? `http://[${a.host}]:${a.port}` : `http://${a.host}:${a.port}`;
}

export class StatusUnreachableError extends TwillError<'ERR_STATUS_UNREACHABLE'> {
  constructor(readonly url: string, cause: unknown) {
    super('ERR_STATUS_UNREACHABLE', `cannot reach twilld at ${url}: ${causeText(cause)}; is it running (systemctl status twilld), and is --http-addr (TWILLD_HTTP_ADDR) the address it listens on?`, { cause });
    this.name = 'StatusUnreachableError';
  }
}

function causeText(err: unknown): string {
  // fetch says "fetch failed" and keeps the reason (ECONNREFUSED, a timeout) in its cause.
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

/** What `status --json` prints when the daemon cannot be reached (or asked): JSON all the same. */
export function unreachableJson(addr: string, err: Error): string {
  const url = err instanceof StatusUnreachableError ? { url: err.url } : {};
  return JSON.stringify({ ready: false, reachable: false, httpAddr: addr, ...url, error: err.message }, null, 2) + '\n';
}

export async function fetchStatus(httpAddr: string, timeoutMs = 3000): Promise<DaemonStatus> {
  const base = statusBaseUrl(httpAddr);
  const get = async (p: string): Promise<string> => {
    try {
      const res = await fetch(base + p, { signal: AbortSignal.timeout(timeoutMs) });
      return await res.text();
    } catch (err) {
      throw new StatusUnreachableError(base + p, err);
    }
  };
  const [ready, metrics] = await Promise.all([get('/readyz'), get('/metrics')]);
  return summarize(ready, metrics);
}
