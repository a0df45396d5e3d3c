// The ADD result and its wire format per spec version, and reading a `prevResult` back.
//
// Version differences that matter to consumers (libcni parses strictly by version):
// - 0.3.0/0.3.1/0.4.0: every `ips[]` entry has `"version": "4"|"6"`.
// - 1.0.0: `ips[].version` is gone.
// - 1.1.0: interfaces may carry `mtu` (and socketPath/pciID, unused here).
// `interface` in `ips[]` is an index into `interfaces`; chained plugins such as portmap use it
// to find the sandbox interface, so it must point at the entry whose `sandbox` is set.
import { isObject as isObjectLike, type Dns } from './config';
import { invalidConfig } from './errors';
import { compareVersions } from './versions';

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIp {
  /** CIDR: "10.244.7.2/24". */
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniResult {
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: CniRoute[];
  dns: Dns;
}

function ipFamily(address: string): '4' | '6' {
  return address.includes(':') ? '6' : '4';
}

/** The result as printed for `cniVersion`. Key order follows libcni's output. */
export function formatResult(r: CniResult, cniVersion: string): Record<string, unknown> {
  const legacy = compareVersions(cniVersion, '1.0.0') < 0;
  const withMtu = compareVersions(cniVersion, '1.1.0') >= 0;
  const interfaces = r.interfaces.map((i) => {
    const o: Record<string, unknown> = { name: i.name };
    if (i.mac) o['mac'] = i.mac;
    if (withMtu && i.mtu) o['mtu'] = i.mtu;
    if (i.sandbox) o['sandbox'] = i.sandbox;
    return o;
  });
  const ips = r.ips.map((ip) => {
    const o: Record<string, unknown> = {};
    if (legacy) o['version'] = ipFamily(ip.address);
    if (ip.interface !== undefined) o['interface'] = ip.interface;
    o['address'] = ip.address;
    if (ip.gateway) o['gateway'] = ip.gateway;
    return o;
  });
  const routes = r.routes.map((rt) => (rt.gw ? { dst: rt.dst, gw: rt.gw } : { dst: rt.dst }));
  const dns: Record<string, unknown> = {};
  if (r.dns.nameservers?.length) dns['nameservers'] = r.dns.nameservers;
  if (r.dns.domain) dns['domain'] = r.dns.domain;
  if (r.dns.search?.length) dns['search'] = r.dns.search;
  if (r.dns.options?.length) dns['options'] = r.dns.options;
  return { cniVersion, interfaces, ips, routes, dns };
}

function str(v: unknown, field: string, optional: true): string | undefined;
function str(v: unknown, field: string, optional?: false): string;
function str(v: unknown, field: string, optional = false): string | undefined {
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw invalidConfig(field, 'is required');
  }
  if (typeof v !== 'string') throw invalidConfig(field, 'must be a string');
  return v;
}

/**
 * Reads a result object (prevResult) in any supported version's format. Only the fields twill
 * needs are typed; the rest is kept untouched by callers that pass the raw object through.
 */
export function parseResult(raw: Record<string, unknown>, field = 'prevResult'): CniResult {
  const list = (key: string): unknown[] => {
    const v = raw[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw invalidConfig(`${field}.${key}`, 'must be a list');
    return v;
  };
  const interfaces = list('interfaces').map((v, i) => {
    const f = `${field}.interfaces[${i}]`;
    if (!isObjectLike(v)) throw invalidConfig(f, 'must be an object');
    const out: CniInterface = { name: str(v['name'], `${f}.name`) };
    const mac = str(v['mac'], `${f}.mac`, true);
    const sandbox = str(v['sandbox'], `${f}.sandbox`, true);
    if (mac) out.mac = mac;
    if (sandbox) out.sandbox = sandbox;
    if (typeof v['mtu'] === 'number') out.mtu = v['mtu'];
    return out;
  });
  const ips = list('ips').map((v, i) => {
    const f = `${field}.ips[${i}]`;
    if (!isObjectLike(v)) throw invalidConfig(f, 'must be an object');
    const out: CniIp = { address: str(v['address'], `${f}.address`) };
    const gw = str(v['gateway'], `${f}.gateway`, true);
    if (gw) out.gateway = gw;
    const idx = v['interface'];
    if (idx !== undefined && idx !== null) {
      if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < 0) throw invalidConfig(`${f}.interface`, 'must be a non-negative integer');
      out.interface = idx;
    }
    return out;
  });
  const routes = list('routes').map((v, i) => {
    const f = `${field}.routes[${i}]`;
    if (!isObjectLike(v)) throw invalidConfig(f, 'must be an object');
    const out: CniRoute = { dst: str(v['dst'], `${f}.dst`) };
    const gw = str(v['gw'], `${f}.gw`, true);
    if (gw) out.gw = gw;
    return out;
  });
  const dnsRaw = raw['dns'];
  const dns: Dns = isObjectLike(dnsRaw) ? (dnsRaw as Dns) : {};
  return { interfaces, ips, routes, dns };
}

/**
 * ADD with a prevResult (twill not first in a chain): keep what earlier plugins reported, append
 * ours, and shift our interface indexes past theirs.
 */
export function mergeResults(prev: CniResult | undefined, ours: CniResult): CniResult {
  if (!prev) return ours;
  const shift = prev.interfaces.length;
  return {
    interfaces: [...prev.interfaces, ...ours.interfaces],
    ips: [...prev.ips, ...ours.ips.map((ip) => (ip.interface === undefined ? ip : { ...ip, interface: ip.interface + shift }))],
    routes: [...prev.routes, ...ours.routes],
    dns: Object.keys(ours.dns).length > 0 ? ours.dns : prev.dns,
  };
}
