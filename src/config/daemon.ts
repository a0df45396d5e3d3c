// twilld's flags. Every flag can also come from the environment as TWILLD_<NAME> (uppercase,
// dashes → underscores) so the systemd unit can use an EnvironmentFile; a flag wins over the
// environment. An empty environment value counts as unset, because environment files commonly
// carry `TWILLD_IFACE=` placeholders. Defaults and units follow flanneld where it has the same
// knob (lease TTL in seconds, renew margin in minutes).
import { isIPv4 } from 'node:net';
import * as os from 'node:os';
import { ConfigError } from './errors';
import { parseListenAddr } from '../observe/http';
import { LOG_LEVELS, isLogLevel, type LogLevel } from '../observe/log';
import { LOG_FORMATS, type LogFormat } from '../observe/log-line';

export const DATAPLANE_MODES = ['kernel', 'userspace', 'auto'] as const;
export type DataplaneMode = (typeof DATAPLANE_MODES)[number];

export interface DaemonConfig {
  etcdEndpoints: string[];
  /** Without trailing slash, e.g. "/coreos.com/network". */
  etcdPrefix: string;
  etcdCafile: string | undefined;
  etcdCertfile: string | undefined;
  etcdKeyfile: string | undefined;
  /**
   * Underlay choice, flannel's precedence: each --iface (a name, or an IPv4 address the
   * interface holds) in order, then each --iface-regex (matched against IPv4 addresses, then
   * names), then --iface-can-reach; none given: the interface holding the default route.
   */
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach: string | undefined;
  /** IPv4 underlay address to publish; undefined: the interface's first address. */
  publicIp: string | undefined;
  subnetFile: string;
  stateDir: string;
  httpAddr: string;
  /** Seconds. */
  subnetLeaseTtl: number;
  /** Minutes before expiry at which the lease is renewed; always less than the TTL. */
  subnetLeaseRenewMargin: number;
  /** Seconds. */
  resyncInterval: number;
  dataplane: DataplaneMode;
  /** Masquerade pod traffic leaving the cluster network (flannel's --ip-masq). */
  ipMasq: boolean;
  /** The WireGuard device's name (wireguard backend). */
  wireguardDevice: string;
  logLevel: LogLevel;
  /** This host's name in health summaries and `twillctl check`. */
  nodeName: string;
  /** Peer probing (src/probe): UDP port of every host's responder; 0 turns probing off. */
  probePort: number;
  /** Seconds between rounds to one peer, at least (longer when the rate bound says so). */
  probeInterval: number;
  /** Probes per second, all peers together, at most. */
  probeRate: number;
  /** undefined: text on a terminal, JSON otherwise (src/observe/log-line.ts). */
  logFormat: LogFormat | undefined;
}

export type ParseResult = { kind: 'help'; text: string } | { kind: 'version' } | { kind: 'run'; config: DaemonConfig };

interface FlagSpec {
  name: string;
  value: string | null; // placeholder in help; null for boolean flags
  help: string;
  dflt: string | null; // shown in help; null: none
}

const FLAGS: readonly FlagSpec[] = [
  { name: 'etcd-endpoints', value: '<urls>', help: 'Comma-separated etcd client URLs (http:// or https://).', dflt: 'http://127.0.0.1:2379' },
  { name: 'etcd-prefix', value: '<path>', help: 'etcd key prefix of the network (flannel layout).', dflt: '/coreos.com/network' },
  { name: 'etcd-cafile', value: '<file>', help: 'CA bundle to verify etcd server certificates.', dflt: null },
  { name: 'etcd-certfile', value: '<file>', help: 'Client certificate for etcd (requires --etcd-keyfile).', dflt: null },
  { name: 'etcd-keyfile', value: '<file>', help: 'Client key for etcd (requires --etcd-certfile).', dflt: null },
  { name: 'iface', value: '<name|ipv4>', help: 'Underlay interface (or an address it holds); repeatable (env: comma-separated), the first that exists with an IPv4 address wins.', dflt: 'the interface with the default route' },
  { name: 'iface-regex', value: '<regex>', help: 'Underlay interface whose IPv4 address, else name, matches; repeatable, tried after --iface.', dflt: null },
  { name: 'iface-can-reach', value: '<ipv4>', help: 'Underlay interface the kernel would use to reach this address; tried last.', dflt: null },
  { name: 'public-ip', value: '<ipv4>', help: 'Underlay IPv4 address published to other hosts.', dflt: "the interface's first IPv4 address" },
  { name: 'subnet-file', value: '<file>', help: 'Where to write the leased subnet for the CNI plugin.', dflt: '/run/twill/subnet.env' },
  { name: 'state-dir', value: '<dir>', help: 'Directory for persistent daemon state (VTEP MAC).', dflt: '/var/lib/twill' },
  { name: 'http-addr', value: '<ip:port>', help: 'Listen address for /healthz, /readyz and /metrics (IPv4:port, [IPv6]:port or :port).', dflt: '127.0.0.1:9464' },
  { name: 'subnet-lease-ttl', value: '<seconds>', help: 'TTL of the subnet lease in etcd.', dflt: '86400' },
  { name: 'subnet-lease-renew-margin', value: '<minutes>', help: 'Renew the lease this long before it expires; must be less than the TTL.', dflt: '60' },
  { name: 'resync-interval', value: '<seconds>', help: 'Period of the full dataplane resync (drift repair).', dflt: '60' },
  { name: 'dataplane', value: '<mode>', help: 'VXLAN datapath: kernel, userspace or auto (kernel if the vxlan module is available).', dflt: 'kernel' },
  { name: 'ip-masq', value: '[=true|false]', help: 'Masquerade traffic from pods to outside the cluster network to the host address (nftables); --ip-masq=false: pods keep their source address and need routes back.', dflt: 'true' },
  { name: 'node-name', value: '<name>', help: "This host's name in health summaries (twillctl check).", dflt: 'the hostname' },
  { name: 'probe-port', value: '<port>', help: 'UDP port of the peer-probe responder on every host (0: no probing).', dflt: '8475' },
  { name: 'probe-interval', value: '<seconds>', help: 'Seconds between probe rounds to one peer, at least.', dflt: '10' },
  { name: 'probe-rate', value: '<probes/s>', help: 'Upper bound on probes sent per second to all peers together; rounds stretch to fit.', dflt: '100' },
  { name: 'wireguard-device', value: '<name>', help: 'WireGuard device name (wireguard backend); one per host on a shared filesystem, as wireguard-go\'s UAPI socket is /var/run/wireguard/<name>.sock.', dflt: 'twill-wg' },
  { name: 'log-level', value: '<level>', help: `Log level: ${LOG_LEVELS.join(', ')}.`, dflt: 'info' },
  { name: 'log-format', value: '<format>', help: 'Log lines as text or json (one JSON object per line).', dflt: 'text on a terminal, else json' },
  { name: 'help', value: null, help: 'Print this help and exit.', dflt: null },
  { name: 'version', value: null, help: 'Print the version and exit.', dflt: null },
];

/** Flags that may be given more than once (in the environment: comma-separated). */
const REPEATABLE = new Set(['iface', 'iface-regex']);
const BOOLEAN_FLAGS = new Set(FLAGS.filter((f) => f.value === null).map((f) => f.name));
const VALUE_FLAGS = new Set(FLAGS.filter((f) => f.value !== null).map((f) => f.name));
/** Value flags whose value is optional: alone they mean "true". */
const OPTIONAL_VALUE_FLAGS = new Set(FLAGS.filter((f) => f.value?.startsWith('[')).map((f) => f.name));

// Node timers hold at most 2^31-1 ms; a longer TTL or resync period would silently fire at once.
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);
// IFNAMSIZ is 16 including the terminating NUL.
const MAX_IFNAME = 15;

export function envName(flag: string): string {
  return 'TWILLD_' + flag.toUpperCase().replace(/-/g, '_');
}

export function daemonHelpText(): string {
  const lines = [
    'Usage: twilld [flags]',
    '',
    "twilld leases this host's pod subnet from etcd, writes it to the subnet file for the",
    'twill CNI plugin, and programs the VXLAN overlay to every other host.',
    '',
    'Every flag can also be set in the environment as TWILLD_<FLAG> (a flag wins).',
    '',
    'Flags:',
  ];
  for (const f of FLAGS) {
    lines.push(`  --${f.name}${f.value ? (f.value.startsWith('[') ? '' : ' ') + f.value : ''}`);
    lines.push(`      ${f.help}`);
    if (f.value !== null) {
      lines.push(`      env ${envName(f.name)}${f.dflt !== null ? `; default: ${f.dflt}` : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}

type Raw = Map<string, { value: string; source: string; all: string[] }>;

export function parseDaemonArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParseResult {
  const raw: Raw = new Map();
  let help = false;
  let version = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') throw new ConfigError(arg, `unexpected argument "${arg}" (twilld takes only flags)`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (BOOLEAN_FLAGS.has(name)) {
      if (eq >= 0) throw new ConfigError(name, `--${name} takes no value`);
      if (name === 'help') help = true;
      else version = true;
      continue;
    }
    if (!VALUE_FLAGS.has(name)) throw new ConfigError(name, `unknown flag --${name}`);
    let value: string;
    if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else if (OPTIONAL_VALUE_FLAGS.has(name)) {
      value = 'true';
    } else {
      const next = argv[i + 1];
      // A following flag means the value was forgotten; no twilld value starts with "--".
      if (next === undefined || next.startsWith('--')) throw new ConfigError(name, `--${name} needs a value`);
      value = next;
      i++;
    }
    raw.set(name, { value, source: `--${name}`, all: [...(raw.get(name)?.all ?? []), value] });
  }

  if (help) return { kind: 'help', text: daemonHelpText() };
  if (version) return { kind: 'version' };

  for (const name of VALUE_FLAGS) {
    if (raw.has(name)) continue;
    const v = env[envName(name)];
    if (v !== undefined && v !== '') raw.set(name, { value: v, source: envName(name), all: REPEATABLE.has(name) ? v.split(',') : [v] });
  }
  return { kind: 'run', config: buildConfig(raw) };
}

function buildConfig(raw: Raw): DaemonConfig {
  const str = (name: string): string | undefined => {
    const r = raw.get(name);
    if (!r) return undefined;
    if (r.value.trim() === '') throw new ConfigError(name, `${r.source} must not be empty`);
    return r.value.trim();
  };
  const withDefault = (name: string, dflt: string): string => str(name) ?? dflt;

  const certfile = str('etcd-certfile');
  const keyfile = str('etcd-keyfile');
  if (certfile !== undefined && keyfile === undefined) {
    throw new ConfigError('etcd-keyfile', '--etcd-certfile needs --etcd-keyfile as well');
  }
  if (keyfile !== undefined && certfile === undefined) {
    throw new ConfigError('etcd-certfile', '--etcd-keyfile needs --etcd-certfile as well');
  }

  const subnetLeaseTtl = int(raw, 'subnet-lease-ttl', 86400, 1, MAX_TIMER_SECONDS);
  const subnetLeaseRenewMargin = int(raw, 'subnet-lease-renew-margin', 60, 1, Math.floor(MAX_TIMER_SECONDS / 60));
  if (subnetLeaseRenewMargin * 60 >= subnetLeaseTtl) {
    throw new ConfigError(
      'subnet-lease-renew-margin',
      `--subnet-lease-renew-margin (${subnetLeaseRenewMargin} min) must be less than --subnet-lease-ttl (${subnetLeaseTtl} s)`,
    );
  }

  const httpAddr = withDefault('http-addr', '127.0.0.1:9464');
  parseListenAddr(httpAddr, 'http-addr');

  return {
    etcdEndpoints: endpoints(withDefault('etcd-endpoints', 'http://127.0.0.1:2379')),
    etcdPrefix: prefix(withDefault('etcd-prefix', '/coreos.com/network')),
    etcdCafile: str('etcd-cafile'),
    etcdCertfile: certfile,
    etcdKeyfile: keyfile,
    iface: list(raw, 'iface').map(iface),
    ifaceRegex: list(raw, 'iface-regex').map(regex),
    ifaceCanReach: ipv4(str('iface-can-reach'), 'iface-can-reach'),
    publicIp: ipv4(str('public-ip'), 'public-ip'),
    subnetFile: withDefault('subnet-file', '/run/twill/subnet.env'),
    stateDir: withDefault('state-dir', '/var/lib/twill'),
    httpAddr,
    subnetLeaseTtl,
    subnetLeaseRenewMargin,
    resyncInterval: int(raw, 'resync-interval', 60, 1, MAX_TIMER_SECONDS),
    dataplane: oneOf(raw, 'dataplane', DATAPLANE_MODES, 'kernel'),
    ipMasq: oneOf(raw, 'ip-masq', ['true', 'false'] as const, 'true') === 'true',
    wireguardDevice: wireguardDeviceName(withDefault('wireguard-device', 'twill-wg')),
    logLevel: logLevel(withDefault('log-level', 'info')),
    nodeName: withDefault('node-name', os.hostname()),
    probePort: int(raw, 'probe-port', 8475, 0, 65535),
    probeInterval: int(raw, 'probe-interval', 10, 1, 3600),
    probeRate: int(raw, 'probe-rate', 100, 1, 100_000),
    logFormat: raw.get('log-format') ? oneOf(raw, 'log-format', LOG_FORMATS, 'json') : undefined,
  };
}

function int(raw: Raw, name: string, dflt: number, min: number, max: number): number {
  const r = raw.get(name);
  if (!r) return dflt;
  const text = r.value.trim();
  if (!/^\d+$/.test(text)) throw new ConfigError(name, `${r.source}: "${r.value}" is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new ConfigError(name, `${r.source}: ${n} is out of range ${min}..${max}`);
  return n;
}

function oneOf<T extends string>(raw: Raw, name: string, allowed: readonly T[], dflt: T): T {
  const r = raw.get(name);
  if (!r) return dflt;
  const v = r.value.trim();
  if (!(allowed as readonly string[]).includes(v)) {
    throw new ConfigError(name, `${r.source}: "${r.value}" is not one of ${allowed.join(', ')}`);
  }
  return v as T;
}

function logLevel(v: string): LogLevel {
  if (!isLogLevel(v)) throw new ConfigError('log-level', `--log-level: "${v}" is not one of ${LOG_LEVELS.join(', ')}`);
  return v;
}

function endpoints(list: string): string[] {
  const out = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (out.length === 0) throw new ConfigError('etcd-endpoints', '--etcd-endpoints lists no endpoint');
  for (const e of out) {
    let url: URL;
    try {
      url = new URL(e);
    } catch (err) {
      throw new ConfigError('etcd-endpoints', `--etcd-endpoints: "${e}" is not a URL`, { cause: err });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigError('etcd-endpoints', `--etcd-endpoints: "${e}" must use http:// or https://`);
    }
    if (url.hostname === '') throw new ConfigError('etcd-endpoints', `--etcd-endpoints: "${e}" has no host`);
    // Credentials in a URL end up in logs and process listings; etcd auth is not configured here.
    if (url.username !== '' || url.password !== '') {
      throw new ConfigError('etcd-endpoints', '--etcd-endpoints: credentials in endpoint URLs are not supported');
    }
  }
  return out;
}

function prefix(p: string): string {
  if (!p.startsWith('/')) throw new ConfigError('etcd-prefix', `--etcd-prefix: "${p}" must start with "/"`);
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') throw new ConfigError('etcd-prefix', '--etcd-prefix must not be "/"');
  return trimmed;
}

/** Every value of a repeatable flag, trimmed; an empty one is an error. */
function list(raw: Raw, name: string): string[] {
  const r = raw.get(name);
  if (!r) return [];
  const out = (REPEATABLE.has(name) ? r.all : [r.value]).map((v) => v.trim());
  if (out.some((v) => v === '')) throw new ConfigError(name, `${r.source} must not be empty`);
  return out;
}

function regex(text: string): string {
  try {
    new RegExp(text);
  } catch (err) {
    throw new ConfigError('iface-regex', `--iface-regex: "${text}" is not a valid regular expression`, { cause: err });
  }
  return text;
}

function iface(name: string): string {
  if (isIPv4(name)) return name;
  if (name.length > MAX_IFNAME || /[\s/]/.test(name) || name === '.' || name === '..') {
    throw new ConfigError('iface', `--iface: "${name}" is not a valid interface name`);
  }
  return name;
}

function ipv4(ip: string | undefined, flag: string): string | undefined {
  if (ip === undefined) return undefined;
  if (!isIPv4(ip)) throw new ConfigError(flag, `--${flag}: "${ip}" is not an IPv4 address`);
  return ip;
}

/** A device name twill owns (src/backends/wireguard/backend.ts): twill-wg or twill-wg-<up to 6>. */
function wireguardDeviceName(v: string): string {
  if (!/^twill-wg(-[A-Za-z0-9_.]{1,6})?$/.test(v)) throw new ConfigError('wireguard-device', `"${v}" must be twill-wg or twill-wg-<1 to 6 letters/digits> (a name twill owns, at most 15 bytes)`);
  return v;
}
