// The build-time checks of the bundle's etcd3 schema patch (etcd3-schema-patch.ts): the
// replacement must give grpc-js what proto-loader's loadSync gives it. Any difference throws,
// which fails the bundle build (never the daemon).

// The dynamic shapes of protobufjs/proto-loader objects are checked here, not typed.
type ProtoAny = any;

/** The options etcd3 1.1.2 passes to loadSync. */
export const LOAD_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

// Only the services etcd3 uses for twilld's calls: KV (get, range, txn), Lease (grant,
// keepalive, time-to-live, revoke), Watch, and Auth (etcd3 authenticates through it when
// credentials are configured). Cluster and Maintenance and the ~40 message types only they use
// are left out: resolving the schema at start-up is then ~14 ms instead of ~25 ms. Using one of
// them from the bundle fails loudly ("etcdserverpb.Maintenance is not a constructor").
export const SERVICES = ['KV', 'Watch', 'Lease', 'Auth'];

// Build-time check: the same services, method paths, stream flags and client method names as
// proto-loader's own loadSync, and messages that round-trip the same way. The samples come from
// a fixed-seed generator, so every build checks the same cases (a build never fails by chance).
export function checkReplacement(etcdRequire: NodeRequire, protoFile: string, replacement: string): void {
  let seed = 0x7e11d;
  const rand = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const ref: ProtoAny = etcdRequire('@grpc/proto-loader').loadSync(protoFile, LOAD_OPTIONS);
  const ours: ProtoAny = new Function('require', `${replacement}\nreturn packageDefinition;`)(etcdRequire);
  const wanted = SERVICES.map((n) => `etcdserverpb.${n}`).sort();
  if (JSON.stringify(wanted) !== JSON.stringify(Object.keys(ours).sort())) {
    throw new Error(`etcd3 schema: services differ: ${wanted} vs ${Object.keys(ours)}`);
  }
  for (const s of Object.keys(ours)) {
    for (const [m, a] of Object.entries<ProtoAny>(ref[s])) {
      const b = ours[s][m];
      for (const k of ['path', 'requestStream', 'responseStream', 'originalName']) {
        if (!b || a[k] !== b[k]) throw new Error(`etcd3 schema: ${s}.${m}.${k} differs`);
      }
    }
    if (Object.keys(ours[s]).length !== Object.keys(ref[s]).length) throw new Error(`etcd3 schema: ${s} methods differ`);
  }
  // The Long#toString fast path (installed by running the replacement above) against BigInt.
  const Long = etcdRequire('protobufjs').util.Long;
  if (!Long.prototype.toString.twillFast) throw new Error('Long#toString fast path not installed');
  const edge = [0, 1, -1, 0x7fffffff, -0x80000000, 0xffffffff, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 1];
  for (let i = 0; i < 20000; i++) {
    const lo = i < edge.length ? edge[i] % 2 ** 32 | 0 : (rand() * 2 ** 32) | 0;
    const hi = i < edge.length ? Math.floor(edge[i] / 2 ** 32) | 0 : i % 3 === 0 ? (rand() * 0x200000) | 0 : (rand() * 2 ** 32) | 0;
    for (const unsigned of [false, true]) {
      const big = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
      const want = (unsigned ? BigInt.asUintN(64, big) : BigInt.asIntN(64, big)).toString();
      const got = new Long(lo, hi, unsigned).toString();
      if (got !== want) throw new Error(`Long#toString fast path: ${hi}/${lo}/${unsigned}: ${got} != ${want}`);
    }
  }
  const same = (what: string, a: unknown, b: unknown): void => {
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`etcd3 schema: ${what} differs`);
  };
  // Every method: the empty message both ways (with defaults: every field, named and typed).
  for (const s of Object.keys(ours)) {
    for (const [m, a] of Object.entries<ProtoAny>(ref[s])) {
      const b = ours[s][m];
      same(`${s}.${m} request`, b.requestDeserialize(a.requestSerialize({})), a.requestDeserialize(a.requestSerialize({})));
      same(`${s}.${m} response`, b.responseDeserialize(a.responseSerialize({})), a.responseDeserialize(a.responseSerialize({})));
    }
  }
  // The hot one with real content, incl. a lease ID above 2^53.
  const kv = 'etcdserverpb.KV';
  const req = { key: Buffer.from('k'), range_end: Buffer.from('l'), limit: '0', revision: '7' };
  if (!ours[kv].Range.requestSerialize(req).equals(ref[kv].Range.requestSerialize(req))) throw new Error('etcd3 schema: Range request encodes differently');
  const res = ref[kv].Range.responseSerialize({
    header: { revision: '12345', cluster_id: '14841639068965178418' },
    kvs: [{ key: Buffer.from('/a'), value: Buffer.from('{}'), create_revision: '3', mod_revision: '9', version: '2', lease: '7587870391934468874' }],
    count: '1',
  });
  same('Range response', ours[kv].Range.responseDeserialize(res), ref[kv].Range.responseDeserialize(res));
  // The hand-written Range decoder against protobufjs: random contents, defaults, unknown
  // fields, and a malformed message (falls back, so both throw or both agree).
  const rnd64 = () => {
    const r = rand();
    const big = r < 0.3 ? BigInt(Math.floor(rand() * 1000)) : r < 0.6 ? BigInt(Math.floor(rand() * 2 ** 53)) : BigInt.asIntN(64, (BigInt(Math.floor(rand() * 2 ** 32)) << 32n) | BigInt(Math.floor(rand() * 2 ** 32)));
    return big.toString();
  };
  const u64 = () => BigInt.asUintN(64, BigInt(rnd64())).toString();
  const variants: Buffer[] = [];
  for (let n = 0; n < 200; n++) {
    const kvs: ProtoAny[] = [];
    for (let i = 0; i < n % 7; i++) {
      const kvObj: ProtoAny = {};
      if (rand() < 0.8) kvObj.key = Buffer.from(`/k/${n}/${i}`);
      if (rand() < 0.8) kvObj.value = Buffer.from(rand() < 0.1 ? '' : `{"v":${i}}`);
      for (const f of ['create_revision', 'mod_revision', 'version', 'lease']) if (rand() < 0.8) kvObj[f] = rnd64();
      kvs.push(kvObj);
    }
    const msg: ProtoAny = { kvs };
    if (n % 5 !== 0) msg.header = { cluster_id: u64(), member_id: u64(), revision: rnd64(), raft_term: u64() };
    if (n % 3 === 0) msg.more = true;
    if (n % 4 !== 0) msg.count = rnd64();
    variants.push(ref[kv].Range.responseSerialize(msg));
  }
  // Unknown fields (varint, fixed64, bytes, fixed32) before and after the known ones.
  const unknown = Buffer.from([0x78, 0x96, 0x01, 0x81, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x8a, 0x01, 0x02, 0x61, 0x62, 0x95, 0x01, 1, 2, 3, 4]);
  variants.push(Buffer.concat([unknown, variants[7]!, unknown]), Buffer.alloc(0), Buffer.from([0x0a, 0x05, 0x08]));
  const fast = ours[kv].Range.responseDeserialize.fast;
  for (const [i, buf] of variants.slice(0, -1).entries()) {
    // Well-formed: the fast decoder itself must get it right (not lean on the fallback).
    same(`fast Range decoder on sample ${i}`, fast(buf), ref[kv].Range.responseDeserialize(buf));
  }
  for (const [i, buf] of variants.entries()) {
    let a: string;
    let b: string;
    try { a = JSON.stringify(ours[kv].Range.responseDeserialize(buf)); } catch (err) { a = `throws ${(err as Error).message}`; }
    try { b = JSON.stringify(ref[kv].Range.responseDeserialize(buf)); } catch (err) { b = `throws ${(err as Error).message}`; }
    if (a !== b) throw new Error(`etcd3 schema: fast Range decoder differs on sample ${i}:\n${a}\n${b}`);
  }
}

