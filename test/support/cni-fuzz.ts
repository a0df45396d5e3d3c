// The CNI fuzz case generator (test/e2e/faults-cni.test.ts, issue 5 case 7): a seeded PRNG
// and one random invocation per call — command, CNI_* variables (missing, odd, path-like) and
// stdin (a valid config with field mutations, byte-level damage, garbage). Case i depends only
// on the seed and i, so a failure can be replayed.
import * as path from 'node:path';
import type { LabPod } from '../../src/lab/lab';
import { POD_NETWORK } from './pods';
import { mulberry32 } from './prng';

export { mulberry32 };

export interface Case {
  env: Record<string, string>;
  stdin: string | Buffer;
  /** Present when the config and env are ones an ADD could succeed with (for the follow-up DEL). */
  note: string;
}

export interface FuzzWorld {
  root: string;
  subnetFile: string;
  dataDir: string;
  pods: LabPod[];
}

export function makeCase(rnd: () => number, w: FuzzWorld, i: number): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const chance = (p: number): boolean => rnd() < p;
  const randStr = (n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_./:\\ \t\n"\'{}[]$`;&|<>*?~ü€\u0000'): string =>
    Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
  const pod = pick(w.pods);
  const validId = `fz${i.toString(36)}${Math.floor(rnd() * 1e6).toString(36)}`;

  const command = pick(['ADD', 'ADD', 'ADD', 'ADD', 'DEL', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC', 'add', 'DELETE', '', 'ADD\n', randStr(5), '__MISSING__'] as const);
  const containerId = chance(0.6) ? validId : pick(['../../x', '../../../etc/passwd', '/etc/passwd', '', ' ', '.', '..', '-x', '.hidden', 'a'.repeat(300), 'ü-pod', 'id;rm -rf /', 'x/y', '__MISSING__', randStr(12)]);
  const ifname = chance(0.65) ? pick(['eth0', 'net1', 'eth1']) : pick(['', '.', '..', '../x', '../../x', 'a/b', 'x'.repeat(16), 'eth 0', 'eth0:1', 'lo', 'ü', '__MISSING__', randStr(8)]);
  const netns = chance(0.7)
    ? `/run/netns/${pod.ns}`
    : pick(['/run/netns/twill-fuzz-does-not-exist', 'relative/netns', '', w.root, path.join(w.root, 'not-a-netns'), '/dev/null', '__MISSING__', `/${randStr(10)}`]);
  const env: Record<string, string> = { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_IFNAME: ifname, CNI_NETNS: netns, CNI_PATH: '/usr/lib/cni' };
  if (chance(0.2)) env['CNI_ARGS'] = pick(['IgnoreUnknown=1;K8S_POD_NAME=x', '=;=;', randStr(30), 'K8S_POD_NAMESPACE=../../x']);
  if (chance(0.1)) env['CNI_PATH'] = pick(['', 'relative', randStr(20)]);
  if (chance(0.05)) env[pick(['CNI_COMMAND ', 'cni_command', 'CNI_EXTRA', 'X'])] = randStr(6);
  // execve() strings end at a NUL: no runtime can pass one in a variable.
  for (const [k, v] of Object.entries(env)) if (v === '__MISSING__') delete env[k];
  else env[k] = v.replace(/\u0000/g, '');

  // The config: a valid one, then 0-3 field mutations, then maybe byte-level damage.
  const conf: Record<string, unknown> = {
    cniVersion: '1.0.0',
    name: POD_NETWORK,
    type: 'twill',
    subnetFile: w.subnetFile,
    dataDir: w.dataDir,
  };
  const fieldValues: Record<string, unknown[]> = {
    cniVersion: ['1.1.0', '1.0.0', '0.4.0', '0.3.1', '0.3.0', '0.2.0', '0.1.0', '2.0.0', '1.0', '', 1, null, true, [], {}, '1.0.0-rc1', randStr(5)],
    name: ['fuzznet', '../../x', '..', '', 'a/b', '.x', 'x'.repeat(300), 7, null, ['n'], 'net ü', POD_NETWORK],
    type: ['twill', '', 'bridge', 3, null, '../twill'],
    subnetFile: [w.subnetFile, path.join(w.root, 'missing.env'), path.join(w.root, 'garbage.env'), w.root, 'relative.env', '', 5, null, `${w.subnetFile}\u0000x`],
    dataDir: [w.dataDir, path.join(w.root, 'data2'), `${w.dataDir}/./`, 'relative/dir', '', 42, null, `${w.dataDir}\u0000/x`],
    bridge: ['twill0', 'eth0', 'lo', 'twill.1', '', '../x', 'x'.repeat(16), 'br 0', 9, null, []],
    mtu: [1450, 1400, 68, 67, 0, -1, 65536, 1e12, 1.5, '1450', null, NaN, 9000],
    hairpinMode: [true, false, 'true', 1, null, {}],
    dns: [{}, { nameservers: ['10.0.0.10'] }, { nameservers: 'x' }, { search: [1] }, 'dns', null, { domain: 5 }],
    prevResult: [{}, { cniVersion: '1.0.0', interfaces: 'x' }, { ips: [{ address: 'garbage' }] }, 'prev', null, [], { cniVersion: '1.0.0', ips: [{ address: '10.244.0.5/24', interface: 99 }], interfaces: [] }],
    'cni.dev/valid-attachments': [[], [{ containerID: 'x', ifname: 'eth0' }], [{ containerID: 1 }], 'all', null, [null]],
    runtimeConfig: [{}, { portMappings: 'x' }, null, 5],
    args: [{}, { cni: { ips: ['10.0.0.1'] } }, 'x'],
  };
  const nMut = Math.floor(rnd() * 4);
  for (let k = 0; k < nMut; k++) {
    const field = pick(Object.keys(fieldValues));
    if (chance(0.15) && !['subnetFile', 'dataDir'].includes(field)) delete conf[field];
    else conf[field] = pick(fieldValues[field]!);
  }
  if (chance(0.05)) conf[randStr(6)] = randStr(10);
  let stdin: string | Buffer = JSON.stringify(conf);
  const r = rnd();
  if (r < 0.05) stdin = '';
  else if (r < 0.08) stdin = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256)));
  else if (r < 0.1) stdin = pick(['null', '[]', '"x"', '1', 'true', '{}', '{"cniVersion":"1.0.0"}', '[{"cniVersion":"1.0.0"}]', '{'.repeat(5000), '{"a":'.repeat(2000)]);
  else if (r < 0.12) stdin = JSON.stringify({ ...conf, pad: 'x'.repeat(200_000) });
  else if (r < 0.25) {
    // Byte-level damage to the JSON text: flips, truncation, insertions.
    const b = Buffer.from(stdin);
    const kind = Math.floor(rnd() * 3);
    if (kind === 0) for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    stdin = kind === 1 ? b.subarray(0, Math.floor(rnd() * b.length)) : kind === 2 ? Buffer.concat([b.subarray(0, 10), Buffer.from(randStr(5)), b.subarray(10)]) : b;
  }
  // Damage that turns dataDir into another valid absolute path would make the plugin create it
  // wherever that is (correctly: it is the configured dataDir). Keep every dataDir under the
  // fuzz root so nothing is written outside the lab, and "outside dataDir" stays checkable.
  if (!dataDirInside(stdin, w)) stdin = JSON.stringify(conf);
  return { env, stdin, note: `${command} id=${JSON.stringify(containerId).slice(0, 40)} if=${JSON.stringify(ifname)}` };
}


function dataDirInside(stdin: string | Buffer, w: FuzzWorld): boolean {
  let v: unknown;
  try {
    v = JSON.parse(stdin.toString());
  } catch {
    return true; // not JSON: the plugin stops at decoding
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return true;
  const d = (v as Record<string, unknown>)['dataDir'];
  if (typeof d !== 'string' || !path.isAbsolute(d) || d.includes('\u0000')) return true;
  return path.resolve(d).startsWith(path.join(w.root, 'data'));
}
