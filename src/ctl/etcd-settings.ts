// How twillctl's etcd commands (leases, check, trace) find etcd: flags, then TWILLD_* in the
// environment, then the daemon's environment file — the places twilld itself reads.
import { setting } from './env-file';

export interface EtcdSettings {
  endpoints: string[];
  prefix: string;
  tls: { caFile: string; certFile: string; keyFile: string } | undefined;
}

export function etcdSettings(flags: Record<string, string | boolean | undefined>, fileEnv: Record<string, string>): EtcdSettings {
  const flag = (n: string): string | undefined => (typeof flags[n] === 'string' ? (flags[n] as string) : undefined);
  const endpoints = setting(flag('etcd-endpoints'), 'TWILLD_ETCD_ENDPOINTS', fileEnv, 'http://127.0.0.1:2379')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const prefix = setting(flag('etcd-prefix'), 'TWILLD_ETCD_PREFIX', fileEnv, '/coreos.com/network').replace(/\/+$/, '');
  const tls = {
    caFile: setting(flag('etcd-cafile'), 'TWILLD_ETCD_CAFILE', fileEnv, ''),
    certFile: setting(flag('etcd-certfile'), 'TWILLD_ETCD_CERTFILE', fileEnv, ''),
    keyFile: setting(flag('etcd-keyfile'), 'TWILLD_ETCD_KEYFILE', fileEnv, ''),
  };
  return { endpoints, prefix, tls: tls.caFile || tls.certFile ? tls : undefined };
}

export const ETCD_FLAGS = {
  'etcd-endpoints': { type: 'string' },
  'etcd-prefix': { type: 'string' },
  'etcd-cafile': { type: 'string' },
  'etcd-certfile': { type: 'string' },
  'etcd-keyfile': { type: 'string' },
} as const;
