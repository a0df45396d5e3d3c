// Shared set-up for dataplane netns tests: a namespace with a veth "underlay" and a promise
// of a reconciler's next convergence.
import { Netns } from './netns';
import type { Reconciler } from '../../src/dataplane/reconciler';

/** A fresh namespace with veth ul0 (holding `cidr`) <-> ul1, both up. */
export function underlayNetns(tag: string, cidr: string): Netns {
  const ns = Netns.create(tag);
  ns.ip('link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1');
  ns.ip('link', 'set', 'ul0', 'up');
  ns.ip('link', 'set', 'ul1', 'up');
  ns.ip('addr', 'add', cidr, 'dev', 'ul0');
  return ns;
}

/** Resolves at the reconciler's next convergence; rejects after 5 s. */
export function nextConvergence(r: Reconciler): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('reconciler did not converge within 5 s')), 5000);
    r.once('converged', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
