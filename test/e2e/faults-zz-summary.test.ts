// Fault suite (issue 5): the summary. Runs last (file order) and prints the table of every
// case's measured figure (case, figure, goal, pass) that the faults-*.test.ts files recorded in
// the figures file. The table goes into docs/fault-figures.md (tracked, quoted by the README)
// only when asked: TWILL_FAULT_FIGURES_DOC=docs/fault-figures.md (any path). `npm test` alone
// must leave the checkout as it found it (issue 16); without it the table is written next to
// the figures file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIGURES_FILE, figuresTable, loadFigures, type Figure } from '../support/faults';

const EXPECTED: Array<[string, string]> = [
  ['1', 'etcd outage'],
  ['2', 'twilld SIGKILL + restart'],
  ['3a', 'drift: peer route'],
  ['3b', 'drift: neighbour'],
  ['3c', 'drift: FDB entry'],
  ['3d', 'drift: device address'],
  ['3e', 'drift: device'],
  ['3f', 'drift: device MTU'],
  ['4', 'compaction while a peer joins'],
  ['5', 'subnet race'],
  ['6', 'bad leases'],
  ['6b', 'lease theft'],
  ['7a', 'CNI under load'],
  ['7b', 'CNI fuzz'],
  ['8', 'underlay MTU change'],
  ['9', 'etcd over mutual TLS'],
];

const ROOT = path.resolve(__dirname, '..', '..', '..');
const ASKED = process.env['TWILL_FAULT_FIGURES_DOC'];
export const DOC = ASKED ? path.resolve(ROOT, ASKED) : `${FIGURES_FILE.replace(/\.json$/, '')}.md`;

test('fault suite summary: every case, its figure, goal and verdict', () => {
  const figs = loadFigures();
  const runner = process.ppid;
  const byId = new Map(figs.map((f) => [f.id, f]));
  const rows: Figure[] = EXPECTED.map(([id, name]) => byId.get(id) ?? { id, case: name, figure: 'not run', goal: '', pass: false, runner: -1, at: '' });
  for (const f of figs) if (!EXPECTED.some(([id]) => id === f.id)) rows.push(f);
  const table = figuresTable(rows, runner);
  const thisRun = rows.filter((f) => f.runner === runner);
  const passed = thisRun.filter((f) => f.pass).length;
  console.log(`\nFault suite (issue 5): ${passed}/${thisRun.length} figures of this run meet their goal (${FIGURES_FILE}; table in ${DOC})\n\n${table}\n`);

  const when = thisRun.map((f) => f.at).sort().pop() ?? new Date().toISOString();
  const doc = [
    '# Fault suite figures',
    '',
    'Measured by the fault suite (`test/e2e/faults-*.test.ts`, issue 5) in the one-machine lab:',
    'real twilld processes, a real etcd and real kernel objects in network namespaces. Regenerated',
    'by a run of the suite asked to (`TWILL_FAULT_FIGURES_DOC=docs/fault-figures.md node --test',
    '--test-concurrency=1 dist/test/e2e/faults-*.test.js`); `npm test` alone writes it elsewhere.',
    '',
    `Latest run: ${when.slice(0, 16).replace('T', ' ')} UTC, ${passed}/${thisRun.length} figures meet their goal.`,
    '',
    table,
    '',
  ].join('\n');
  try {
    fs.mkdirSync(path.dirname(DOC), { recursive: true });
    fs.writeFileSync(DOC, doc);
  } catch (err) {
    console.log(`could not write ${DOC}: ${(err as Error).message}`);
  }
  assert.ok(rows.length >= EXPECTED.length);
});
