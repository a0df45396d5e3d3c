// No import cycles in src/: neither at run time (the require graph of dist/src, lazy require()s
// included) nor in the sources (type-only imports included, which tsc erases: a cycle through
// types still ties two files together). Cycles found and removed before: cni/skel <-> add,
// check, del (CmdArgs now in cni/cmd-args.ts) and lab/lab <-> lab/pods (lab-state.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '../../..');

function filesUnder(dir: string, ext: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p, ext) : p.endsWith(ext) ? [p] : [];
  });
}

/** file -> the files of the same tree it imports (relative specifiers only). */
function importGraph(dir: string, ext: string, specifiers: RegExp): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of filesUnder(dir, ext)) {
    const deps: string[] = [];
    for (const m of fs.readFileSync(file, 'utf8').matchAll(specifiers)) {
      const base = path.resolve(path.dirname(file), m[1]!);
      const hit = [base + ext, path.join(base, `index${ext}`)].find((f) => fs.existsSync(f));
      if (hit) deps.push(hit);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Every cycle's members (strongly connected components of more than one file, or a self-import). */
function findCycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

function show(cycles: string[][], root: string): string[] {
  return cycles.map((c) => c.map((f) => path.relative(root, f)).join(' <-> '));
}

test('findCycles finds a two-file cycle, a longer one and a self-import, and nothing in a tree', () => {
  const g = new Map<string, string[]>([
    ['a', ['b']], ['b', ['a', 'c']], ['c', []],
    ['d', ['e']], ['e', ['f']], ['f', ['d']],
    ['s', ['s']],
    ['t', ['c', 'u']], ['u', ['c']],
  ]);
  assert.deepEqual(findCycles(g).map((c) => c.join(',')).sort(), ['a,b', 'd,e,f', 's']);
});

test('the sources in src/ import no cycle (type-only imports and lazy requires count)', () => {
  const src = path.join(REPO, 'src');
  const graph = importGraph(src, '.ts', /(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g);
  assert.ok(graph.size > 50, `found only ${graph.size} files under ${src}`);
  assert.deepEqual(show(findCycles(graph), src), []);
});

test('the compiled dist/src requires no cycle', () => {
  const dist = path.join(REPO, 'dist', 'src');
  const graph = importGraph(dist, '.js', /\brequire\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g);
  assert.ok(graph.size > 50, `found only ${graph.size} files under ${dist}`);
  assert.deepEqual(show(findCycles(graph), dist), []);
});
