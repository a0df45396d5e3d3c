// The plugin's configuration, as the runtime hands it over on stdin: one plugin object of a
// conflist with `cniVersion` and `name` inserted, plus `prevResult`/`runtimeConfig` on
// ADD/DEL/CHECK and `cni.dev/valid-attachments` on GC. Unknown fields are ignored (runtimes add
// their own, and later spec versions add more), except near misses of our own ("subnetfile");
// a known field of the wrong type is error 7 naming the field, so an administrator sees which
// line of the conflist is wrong.
import * as path from 'node:path';
import { CniError, invalidConfig } from './errors';
import { isSemver, isSupported, SUPPORTED_VERSIONS } from './versions';

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Attachment {
  containerId: string;
  ifname: string;
}

export interface PluginConfig {
  cniVersion: string;
  name: string;
  type: string;
  subnetFile: string;
  dataDir: string;
  bridge: string;
  /** Overrides the subnet file's MTU when set. */
  mtu: number | undefined;
  hairpinMode: boolean;
  dns: Dns;
  /** Raw; parsed by result.ts where a command needs it. */
  prevResult: Record<string, unknown> | undefined;
  /** GC only: the attachments that are still valid. */
  validAttachments: Attachment[] | undefined;
}

export const DEFAULTS = {
  subnetFile: '/run/twill/subnet.env',
  dataDir: '/var/lib/cni/twill',
  bridge: 'twill0',
} as const;

// The spec's rule for network names and container IDs; the name also becomes a directory.
export const CNI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The spec's interface name rule (also Linux's): 1-15 bytes, not . or .., no / : or space. */
export function ifnameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name) > 15) return 'is longer than 15 characters';
  if (name === '.' || name === '..') return 'is "." or ".."';
  if (/[/:\s]/.test(name)) return 'contains "/", ":" or whitespace';
  return undefined;
}

/** JSON text → object; undecodable input is error 6. */
export function decodeJson(text: string): Record<string, unknown> {
  if (text.trim() === '') throw new CniError('ERR_CNI_DECODE', 'no network configuration on stdin');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CniError('ERR_CNI_DECODE', 'network configuration on stdin is not valid JSON', (err as Error).message);
  }
  if (!isObject(v)) throw new CniError('ERR_CNI_DECODE', 'network configuration on stdin is not a JSON object');
  return v;
}

/** Checks cniVersion alone (error 1 when we cannot speak it) and returns it. */
export function checkVersion(raw: Record<string, unknown>): string {
  const v = raw['cniVersion'];
  if (v === undefined) {
    throw new CniError('ERR_CNI_INCOMPATIBLE_VERSION', 'incompatible CNI versions: config has no cniVersion (0.1.0 implied)', `plugin supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (typeof v !== 'string') throw invalidConfig('cniVersion', `must be a string, got ${typeName(v)}`);
  if (!isSemver(v) || !isSupported(v)) {
    throw new CniError('ERR_CNI_INCOMPATIBLE_VERSION', `incompatible CNI versions: config is ${JSON.stringify(v)}`, `plugin supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return v;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

function optString(raw: Record<string, unknown>, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidConfig(key, `must be a string, got ${typeName(v)}`);
  return v;
}

function absPath(raw: Record<string, unknown>, key: string, dflt: string): string {
  const v = optString(raw, key) ?? dflt;
  if (!path.isAbsolute(v) || v.includes('\0')) throw invalidConfig(key, `must be an absolute path, got ${JSON.stringify(v)}`);
  return path.resolve(v);
}

function stringList(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalidConfig(key, 'must be a list of strings');
  return v as string[];
}

function parseDns(v: unknown): Dns {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw invalidConfig('dns', `must be an object, got ${typeName(v)}`);
  const out: Dns = {};
  if (v['nameservers'] !== undefined) out.nameservers = stringList(v['nameservers'], 'dns.nameservers');
  if (v['domain'] !== undefined) {
    if (typeof v['domain'] !== 'string') throw invalidConfig('dns.domain', 'must be a string');
    out.domain = v['domain'];
  }
  if (v['search'] !== undefined) out.search = stringList(v['search'], 'dns.search');
  if (v['options'] !== undefined) out.options = stringList(v['options'], 'dns.options');
  return out;
}

function parseAttachments(raw: Record<string, unknown>): Attachment[] | undefined {
  // `cni.dev/valid-attachments` is the 1.1 spec's name; `cni.dev/attachments` appeared in
  // drafts and in some runtimes' GC implementations.
  const key = raw['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalidConfig(key, `must be a list, got ${typeName(v)}`);
  return v.map((a, i) => {
    if (!isObject(a) || typeof a['containerID'] !== 'string' || typeof a['ifname'] !== 'string') {
      throw invalidConfig(`${key}[${i}]`, 'must be an object with string "containerID" and "ifname"');
    }
    return { containerId: a['containerID'], ifname: a['ifname'] };
  });
}

/** The plugin's own fields (the spec's and twill's): near misses of these are reported. */
const KNOWN_FIELDS = ['cniVersion', 'name', 'type', 'subnetFile', 'dataDir', 'bridge', 'mtu', 'hairpinMode', 'dns', 'prevResult', 'runtimeConfig', 'capabilities', 'args'];

/**
 * A field that is not one of ours but almost is ("subnetfile", "dataDirr"): silently ignoring it
 * would run with the default the administrator meant to change. Other unknown fields are left
 * alone (runtimes add their own); short names are only matched ignoring case.
 */
export function misspeltField(raw: Record<string, unknown>): { key: string; meant: string } | undefined {
  for (const key of Object.keys(raw)) {
    if (KNOWN_FIELDS.includes(key)) continue;
    const meant = KNOWN_FIELDS.find((k) => k.toLowerCase() === key.toLowerCase() || (k.length >= 6 && key.length >= 6 && editDistance(k.toLowerCase(), key.toLowerCase()) <= 2));
    if (meant) return { key, meant };
  }
  return undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Validates everything but cniVersion's support (see checkVersion, which runs first). */
export function parseConfig(raw: Record<string, unknown>): PluginConfig {
  const cniVersion = checkVersion(raw);
  const name = optString(raw, 'name');
  if (name === undefined || !CNI_NAME.test(name)) {
    throw invalidConfig('name', `must start with a letter or digit and hold only letters, digits, "_", "." and "-", got ${JSON.stringify(name ?? null)}`);
  }
  const type = optString(raw, 'type');
  if (type === undefined || type === '') {
    if (Array.isArray(raw['plugins'])) {
      throw invalidConfig(
        'type',
        'is required: this is a whole conflist ("plugins": [...]); a runtime passes one plugin object of it, with "cniVersion" and "name" added. By hand: jq \'.plugins[0] + {cniVersion, name}\' /etc/cni/net.d/10-twill.conflist',
      );
    }
    throw invalidConfig('type', 'is required');
  }
  const misspelt = misspeltField(raw);
  if (misspelt) throw invalidConfig(misspelt.key, `is not a field of the twill plugin; did you mean "${misspelt.meant}"?`);

  const bridge = optString(raw, 'bridge') ?? DEFAULTS.bridge;
  const bad = ifnameProblem(bridge);
  if (bad) throw invalidConfig('bridge', `${bad}: ${JSON.stringify(bridge)}`);

  let mtu: number | undefined;
  if (raw['mtu'] !== undefined && raw['mtu'] !== null) {
    const m = raw['mtu'];
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 68 || m > 65535) throw invalidConfig('mtu', `must be an integer 68..65535, got ${JSON.stringify(m)}`);
    mtu = m;
  }

  let hairpinMode = false;
  if (raw['hairpinMode'] !== undefined && raw['hairpinMode'] !== null) {
    if (typeof raw['hairpinMode'] !== 'boolean') throw invalidConfig('hairpinMode', `must be a boolean, got ${typeName(raw['hairpinMode'])}`);
    hairpinMode = raw['hairpinMode'];
  }

  const prev = raw['prevResult'];
  if (prev !== undefined && prev !== null && !isObject(prev)) throw invalidConfig('prevResult', `must be an object, got ${typeName(prev)}`);

  return {
    cniVersion,
    name,
    type,
    subnetFile: absPath(raw, 'subnetFile', DEFAULTS.subnetFile),
    dataDir: absPath(raw, 'dataDir', DEFAULTS.dataDir),
    bridge,
    mtu,
    hairpinMode,
    dns: parseDns(raw['dns']),
    prevResult: isObject(prev) ? prev : undefined,
    validAttachments: parseAttachments(raw),
  };
}
