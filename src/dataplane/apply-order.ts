// The order of one convergence batch, from the tables' layers (a route relies on its
// neighbour, a neighbour on its FDB entry). Pure.
//
// 1. deletes of the top layer (routes): nothing is left pointing at what goes next;
// 2. writes bottom-up (FDB, neighbours, routes): a route never exists before what it relies on;
// 3. deletes of the lower layers top-down.
// A peer switching path (VXLAN DirectRouting) keeps its route key: the route is replaced in
// one step (write), and its old neighbour and FDB entry go only after (3). A peer switching
// the other way gets its FDB entry and neighbour before its route is replaced. Either way the
// kernel always holds one complete path.

export interface Layered {
  readonly layer: number;
}

export interface Step<T extends Layered> {
  table: T;
  op: 'write' | 'delete';
}

export function applyOrder<T extends Layered>(tables: readonly T[]): Array<Step<T>> {
  const byLayer = [...tables].sort((a, b) => a.layer - b.layer);
  const top = byLayer.length > 0 ? byLayer[0]!.layer : 0;
  const steps: Array<Step<T>> = [];
  for (const t of byLayer) if (t.layer === top) steps.push({ table: t, op: 'delete' });
  for (const t of [...byLayer].reverse()) steps.push({ table: t, op: 'write' });
  for (const t of byLayer) if (t.layer !== top) steps.push({ table: t, op: 'delete' });
  return steps;
}
