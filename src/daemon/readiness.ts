// twilld's readiness, with the cause: what is missing, what blocks it (the error, with its
// subject: an etcd endpoint, a config field, an interface, a file) and what to do next.
//
// Why: `twillctl status` used to print the same three reasons whether the network config was
// invalid, etcd was down or the interface was missing (issue 16). The daemon now keeps the error
// that currently blocks its start or its lease as a Blocker, set where it is retried and cleared
// when that step succeeds; /readyz and `twillctl status` show it. Pure: plain data in and out.
import { NetworkConfigError } from '../config/network';

export interface Blocker {
  /** What the error is about: "etcd http://10.0.0.5:2379", "network config field SubnetLen", … */
  subject: string;
  /** The error, one line. */
  error: string;
  /** What an operator does about it. */
  next: string;
}

export interface ReadinessFacts {
  leaseHeld: boolean;
  everConverged: boolean;
  converging: boolean;
  subnetFileInSync: boolean;
  subnetFile: string;
  blocker: Blocker | undefined;
}

export interface Readiness {
  ok: boolean;
  reasons: string[];
  /** Set when an error stands in the way (also while ready: e.g. renewals failing). */
  blocking: Blocker | undefined;
}

export function readinessOf(f: ReadinessFacts): Readiness {
  const reasons: string[] = [];
  if (!f.leaseHeld) reasons.push('no subnet lease held');
  if (!f.everConverged) reasons.push('dataplane has not converged');
  else if (f.converging) reasons.push('dataplane converging');
  if (!f.subnetFileInSync) reasons.push(`subnet file ${f.subnetFile} not written`);
  return { ok: reasons.length === 0, reasons, blocking: f.blocker };
}

/** One line: "etcd http://…: connect ECONNREFUSED …; next: …". */
export function formatBlocker(b: Blocker): string {
  return `${b.subject}: ${b.error}; next: ${b.next}`;
}

export function etcdBlocker(endpoints: readonly string[], err: unknown): Blocker {
  return {
    subject: `etcd ${endpoints.join(',')}`,
    error: errorLine(err),
    next: 'check that etcd runs and is reachable from this host, and the endpoints in --etcd-endpoints (TWILLD_ETCD_ENDPOINTS in /etc/twill/twilld.env)',
  };
}

export function missingConfigBlocker(key: string): Blocker {
  return {
    subject: `network config ${key}`,
    error: 'not in etcd',
    next: `write it, e.g. etcdctl put ${key} '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'; twilld picks it up within 2 s`,
  };
}

export function invalidConfigBlocker(key: string, err: NetworkConfigError): Blocker {
  return {
    subject: `network config ${key} field ${err.field}`,
    error: err.message,
    next: `fix it with etcdctl put ${key} '<corrected JSON>'; twilld picks it up within 2 s`,
  };
}

/** Anything else a start-up step retries: the subject is the step. */
export function stepBlocker(step: string, err: unknown): Blocker {
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_OUT_OF_SUBNETS') {
    return { subject: step, error: errorLine(err), next: 'every subnet is leased: widen Network/SubnetMin/SubnetMax in the network config, or delete leases of hosts that are gone (twillctl leases)' };
  }
  if (code === 'ERR_UNDERLAY') {
    return { subject: step, error: errorLine(err), next: 'give the underlay interface with --iface (TWILLD_IFACE), or its address with --public-ip' };
  }
  return { subject: step, error: errorLine(err), next: `see twilld's log (journalctl -u twilld) for ${step}` };
}

export function lostLeaseBlocker(subnet: string, holderValue: string | null): Blocker {
  return {
    subject: `subnet lease ${subnet}`,
    error: `another host holds it now${holderValue ? ` (${holderValue})` : ''}`,
    next: 'twilld takes it back when that key is deleted or expires; two hosts with the same PublicIP? check twillctl leases',
  };
}

export function subnetFileBlocker(file: string, err: unknown): Blocker {
  return { subject: `subnet file ${file}`, error: errorLine(err), next: 'remove what is in its place, or make its directory writable for twilld (--subnet-file); twilld rewrites it by itself' };
}

/**
 * The error and its causes in one line, without repeating what the message already says. An
 * etcd error's message is its unwrapped cause already (src/subnet/etcd-cause.ts).
 */
export function errorLine(err: unknown): string {
  let line = err instanceof Error ? err.message : String(err);
  let c: unknown = err instanceof Error && (err as { code?: unknown }).code !== 'ERR_ETCD' ? err.cause : undefined;
  for (let depth = 0; c instanceof Error && depth < 3; depth++, c = c.cause) {
    if (!line.includes(c.message)) line += `: ${c.message}`;
  }
  return line.split('\n')[0]!;
}
