// CNI error model. Every failure the plugin reports is a CniError: a stable string `code` for
// code and tests to branch on, the numeric `cniCode` the spec puts on the wire (0-99 are the
// spec's well-known codes, 100+ are twill's own), a short `msg` and a longer `details`.
// `toCniError` maps anything else that escapes a command (netlink, subnet file, fs errors) so the
// runtime always gets spec error JSON and never a stack trace.
import { errorCode, TwillError } from '../base/twill-error';
import type { NetlinkError } from '../netlink/errors';

export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO: 5,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN: 11,
  NOT_AVAILABLE: 50,
  // twill's own
  INTERNAL: 100,
  IFACE_EXISTS: 101,
  SUBNET_FILE: 102,
  IPAM_EXHAUSTED: 103,
  NETLINK: 104,
  CHECK_FAILED: 105,
  GC_INCOMPLETE: 106,
  HOST_VETH_EXISTS: 107,
  BRIDGE_CONFLICT: 108,
} as const;

export type CniErrorCode =
  | 'ERR_CNI_INCOMPATIBLE_VERSION'
  | 'ERR_CNI_UNKNOWN_CONTAINER'
  | 'ERR_CNI_INVALID_ENV'
  | 'ERR_CNI_IO'
  | 'ERR_CNI_DECODE'
  | 'ERR_CNI_INVALID_CONFIG'
  | 'ERR_CNI_TRY_AGAIN'
  | 'ERR_CNI_NOT_AVAILABLE'
  | 'ERR_CNI_INTERNAL'
  | 'ERR_CNI_IFACE_EXISTS'
  | 'ERR_CNI_SUBNET_FILE'
  | 'ERR_CNI_IPAM_EXHAUSTED'
  | 'ERR_CNI_NETLINK'
  | 'ERR_CNI_CHECK_FAILED'
  | 'ERR_CNI_GC_INCOMPLETE'
  | 'ERR_CNI_HOST_VETH_EXISTS'
  | 'ERR_CNI_BRIDGE_CONFLICT';

const NUMERIC: Record<CniErrorCode, number> = {
  ERR_CNI_INCOMPATIBLE_VERSION: CniCode.INCOMPATIBLE_VERSION,
  ERR_CNI_UNKNOWN_CONTAINER: CniCode.UNKNOWN_CONTAINER,
  ERR_CNI_INVALID_ENV: CniCode.INVALID_ENV,
  ERR_CNI_IO: CniCode.IO,
  ERR_CNI_DECODE: CniCode.DECODE,
  ERR_CNI_INVALID_CONFIG: CniCode.INVALID_CONFIG,
  ERR_CNI_TRY_AGAIN: CniCode.TRY_AGAIN,
  ERR_CNI_NOT_AVAILABLE: CniCode.NOT_AVAILABLE,
  ERR_CNI_INTERNAL: CniCode.INTERNAL,
  ERR_CNI_IFACE_EXISTS: CniCode.IFACE_EXISTS,
  ERR_CNI_SUBNET_FILE: CniCode.SUBNET_FILE,
  ERR_CNI_IPAM_EXHAUSTED: CniCode.IPAM_EXHAUSTED,
  ERR_CNI_NETLINK: CniCode.NETLINK,
  ERR_CNI_CHECK_FAILED: CniCode.CHECK_FAILED,
  ERR_CNI_GC_INCOMPLETE: CniCode.GC_INCOMPLETE,
  ERR_CNI_HOST_VETH_EXISTS: CniCode.HOST_VETH_EXISTS,
  ERR_CNI_BRIDGE_CONFLICT: CniCode.BRIDGE_CONFLICT,
};

export class CniError extends TwillError<CniErrorCode> {
  readonly cniCode: number;
  readonly details: string;

  constructor(code: CniErrorCode, msg: string, details = '', options?: { cause?: unknown }) {
    super(code, msg, options);
    this.name = 'CniError';
    this.cniCode = NUMERIC[code];
    this.details = details;
  }
}

/** Shorthand for the most common one: error 7 naming the offending field. */
export function invalidConfig(field: string, why: string): CniError {
  return new CniError('ERR_CNI_INVALID_CONFIG', `invalid network config: "${field}" ${why}`, field);
}

/** The spec's error object, as printed on stdout. */
export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Maps anything thrown by a command to a CniError; never throws itself. Branches on `code`
 * only, so this module does not load src/netlink (VERSION and STATUS never need it).
 */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  const code = errorCode(err);
  if (code === 'ERR_NETLINK') {
    const e = err as NetlinkError;
    return new CniError('ERR_CNI_NETLINK', `netlink: ${e.message}`, `${e.op} ${e.target}: errno ${e.errno} (${e.errnoName})`, { cause: err });
  }
  if (code === 'ERR_SUBNET_FILE') {
    return new CniError('ERR_CNI_SUBNET_FILE', `invalid subnet file: ${describe(err)}`, '', { cause: err });
  }
  // Node's fs errors carry a string errno name (EACCES, EIO, ENOSPC, EROFS ...).
  if (code !== undefined && /^E[A-Z0-9]+$/.test(code)) {
    return new CniError('ERR_CNI_IO', `I/O error: ${describe(err)}`, code, { cause: err });
  }
  return new CniError('ERR_CNI_INTERNAL', `internal error: ${describe(err)}`, err instanceof Error ? err.name : typeof err, { cause: err });
}

export function errorJson(err: CniError, cniVersion: string): CniErrorJson {
  const out: CniErrorJson = { cniVersion, code: err.cniCode, msg: err.message };
  if (err.details) out.details = err.details;
  return out;
}
