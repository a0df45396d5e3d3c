// The build-time patch of etcd3 (see etcd3-patches.ts for all of them): how the daemon bundle
// (scripts/bundle-daemon.mjs) loads etcd3's protobuf schema. Nothing here runs in the daemon
// itself: the bundler compiles this file and calls etcd3SchemaPlugin().
//
// Why: etcd3 parses its .proto files at load (proto-loader's loadSync: ~40 ms of parsing, then
// ~50 ms building reflection descriptors nobody here uses). The bundle carries the parsed
// protobuf schema as JSON (made at build time from etcd3's own .proto files) and builds only
// what grpc-js needs for clients: per method its path, stream flags and (de)serialisers, made
// exactly as proto-loader makes them. Checks (etcd3-schema-check.ts) compare the result with loadSync's, so
// an etcd3/proto-loader upgrade that changes the shape fails the build instead of the daemon.
// No .proto files need to ship beside the bundle. The replacement records the etcd3 version it
// was built for (SCHEMA_PATCH_MARK), which the daemon's start-up self-check compares.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { Plugin } from 'esbuild';
import { checkReplacement, LOAD_OPTIONS, SERVICES } from './etcd3-schema-check';
import { ETCD3_PATCHED_VERSION, SCHEMA_PATCH_MARK } from './etcd3-patches';

// The dynamic shapes of protobufjs/proto-loader objects are checked at build time, not typed.
type ProtoAny = any;

// etcd3 1.1.2 (lib/connection-pool.js) loads its schema with exactly this call.
export const LOAD_CALL = 'const packageDefinition = (0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`, {\n    keepCase: true,\n    longs: String,\n    enums: String,\n    defaults: true,\n    oneofs: true,\n});';
export const LOADER_REQUIRE = 'const proto_loader_1 = require("@grpc/proto-loader");';

function prunedSchema(etcdRequire: NodeRequire, protoFile: string): unknown {
  const protobuf = etcdRequire('protobufjs');
  const protoUtil = etcdRequire('@grpc/proto-loader/build/src/util');
  const full = protoUtil.loadProtosWithOptionsSync(protoFile, LOAD_OPTIONS);
  const need = new Set<string>();
  const visit = (t: ProtoAny): void => {
    if (!t || need.has(t.fullName)) return;
    need.add(t.fullName);
    for (let p = t.parent; p && p.fullName; p = p.parent) need.add(p.fullName);
    if (t instanceof protobuf.Type) {
      for (const f of t.fieldsArray) visit(f.resolvedType);
      for (const n of t.nestedArray) visit(n);
    }
  };
  for (const name of SERVICES) {
    const svc = full.lookupService(`etcdserverpb.${name}`);
    need.add(svc.fullName);
    for (const m of svc.methodsArray) {
      m.resolve();
      visit(m.resolvedRequestType);
      visit(m.resolvedResponseType);
    }
  }
  const json = full.toJSON();
  const prune = (ns: ProtoAny, prefix: string): void => {
    for (const k of Object.keys(ns.nested ?? {})) {
      const fullName = `${prefix}.${k}`;
      if (!need.has(fullName)) delete ns.nested[k];
      else if (ns.nested[k].nested) prune(ns.nested[k], fullName);
    }
  };
  prune(json, '');
  return json;
}

// Runs inside the bundle in place of LOAD_CALL. Mirrors proto-loader 0.7's
// createMethodDefinition/createSerializer/createDeserializer for the service methods only.
//
// KV.Range answers (the 10,000-key listing at every cold start: ~1.8 MB, ~100 ms through
// protobufjs's generated decoder + toObject, most of it allocating) are decoded by the
// hand-written decoder below into exactly what toObject(decode(buf), options) returns: same
// fields, same order, same defaults, int64/uint64 as decimal strings, bytes as Buffer views.
// Anything it does not expect (a field with an unexpected wire type, groups, truncation) makes
// it hand the message to protobufjs instead. Checked below against protobufjs on samples with
// every field, defaults, unknown fields, negative and > 2^53 values.
//
// It also gives long.js's Long#toString a fast path: with longs: String every int64 of every
// message is turned into a decimal string (a range over 10,000 keys has 40,000 of them:
// revisions, versions, lease IDs), and long.js does that by repeated 64-bit division, ~35 ms
// per cold start here. Values below 2^53 — all but lease IDs — convert exactly through a
// double; the rest still take long.js's own path. Checked below against BigInt.
const FAST_RANGE = `
  let p = 0;
  let lo = 0;
  let hi = 0;
  const varint = (b, end) => {
    lo = 0;
    hi = 0;
    for (let i = 0; i < 10; i++) {
      if (p >= end) throw new RangeError('truncated varint');
      const c = b[p++];
      if (i < 4) lo |= (c & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (c & 0x0f) << 28;
        hi |= (c & 0x70) >> 4;
      } else hi |= (c & 0x7f) << (7 * i - 32);
      if (c < 0x80) return;
    }
    throw new RangeError('varint too long');
  };
  const str = (unsigned) => {
    const l = lo >>> 0;
    const h = hi >>> 0;
    if (h === 0) return String(l);
    if (h < 0x200000) return String(h * 4294967296 + l);
    const big = (BigInt(h) << 32n) | BigInt(l);
    return (unsigned ? big : BigInt.asIntN(64, big)).toString();
  };
  const len = (b, end) => {
    varint(b, end);
    const e = p + (lo >>> 0);
    if (e > end) throw new RangeError('truncated field');
    return e;
  };
  const skip = (b, wt, end) => {
    if (wt === 0) varint(b, end);
    else if (wt === 1) p += 8;
    else if (wt === 2) p = len(b, end);
    else if (wt === 5) p += 4;
    else throw new RangeError('unsupported wire type');
    if (p > end) throw new RangeError('truncated field');
  };
  const bytes = (b, end) => {
    const e = len(b, end);
    const v = e === p ? Buffer.alloc(0) : b.subarray(p, e);
    p = e;
    return v;
  };
  const header = (b, end) => {
    const h = { cluster_id: '0', member_id: '0', revision: '0', raft_term: '0' };
    while (p < end) {
      varint(b, end);
      const f = lo >>> 3;
      const wt = lo & 7;
      if (f >= 1 && f <= 4) {
        if (wt !== 0) throw new RangeError('wire type');
        varint(b, end);
        if (f === 1) h.cluster_id = str(true);
        else if (f === 2) h.member_id = str(true);
        else if (f === 3) h.revision = str(false);
        else h.raft_term = str(true);
      } else skip(b, wt, end);
    }
    return h;
  };
  const keyValue = (b, end) => {
    let key = null;
    let value = null;
    let cr = '0';
    let mr = '0';
    let ver = '0';
    let lease = '0';
    while (p < end) {
      varint(b, end);
      const f = lo >>> 3;
      const wt = lo & 7;
      if (f === 1 || f === 5) {
        if (wt !== 2) throw new RangeError('wire type');
        if (f === 1) key = bytes(b, end);
        else value = bytes(b, end);
      } else if ((f >= 2 && f <= 4) || f === 6) {
        if (wt !== 0) throw new RangeError('wire type');
        varint(b, end);
        const v = str(false);
        if (f === 2) cr = v;
        else if (f === 3) mr = v;
        else if (f === 4) ver = v;
        else lease = v;
      } else skip(b, wt, end);
    }
    return { key: key ?? Buffer.alloc(0), create_revision: cr, mod_revision: mr, version: ver, value: value ?? Buffer.alloc(0), lease };
  };
  const decodeRangeResponse = (b) => {
    p = 0;
    const end = b.length;
    const out = { kvs: [], header: null, more: false, count: '0' };
    while (p < end) {
      varint(b, end);
      const f = lo >>> 3;
      const wt = lo & 7;
      if (f === 1 || f === 2) {
        if (wt !== 2) throw new RangeError('wire type');
        const e = len(b, end);
        if (f === 1) out.header = header(b, e);
        else out.kvs.push(keyValue(b, e));
        p = e;
      } else if (f === 3 || f === 4) {
        if (wt !== 0) throw new RangeError('wire type');
        varint(b, end);
        if (f === 3) out.more = (lo >>> 0) !== 0;
        else out.count = str(false);
      } else skip(b, wt, end);
    }
    return out;
  };`;

/** The JavaScript that takes the place of LOAD_CALL, carrying the schema as JSON. */
function replacementSource(schemaJson: string): string {
  return `const packageDefinition = (() => {
  globalThis[Symbol.for('${SCHEMA_PATCH_MARK}')] = '${ETCD3_PATCHED_VERSION}';
  const protobuf = require('protobufjs');
  const camelCase = require('lodash.camelcase');
  const Long = protobuf.util.Long;
  if (Long && !Long.prototype.toString.twillFast) {
    const slow = Long.prototype.toString;
    const fast = function toString(radix) {
      if (radix === undefined || radix === 10) {
        const hi = this.high;
        if (hi === 0) return String(this.low >>> 0);
        if (hi > 0 && hi < 0x200000) return String(hi * 4294967296 + (this.low >>> 0));
      }
      return slow.call(this, radix);
    };
    fast.twillFast = true;
    Long.prototype.toString = fast;
  }
  const options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
  const root = protobuf.Root.fromJSON(${schemaJson});
  root.resolveAll();
${FAST_RANGE}
  const def = {};
  const visit = (ns, prefix) => {
    for (const obj of ns.nestedArray) {
      const name = prefix ? prefix + '.' + obj.name : obj.name;
      if (obj instanceof protobuf.Service) {
        const service = {};
        for (const m of obj.methodsArray) {
          const req = m.resolvedRequestType;
          const res = m.resolvedResponseType;
          const ser = (cls) => (arg) => {
            if (Array.isArray(arg)) throw new Error('Failed to serialize message: expected object with ' + cls.name + ' structure, got array instead');
            return cls.encode(cls.fromObject(arg)).finish();
          };
          const des = (cls) => (buf) => cls.toObject(cls.decode(buf), options);
          service[m.name] = {
            path: '/' + name + '/' + m.name,
            requestStream: !!m.requestStream,
            responseStream: !!m.responseStream,
            requestSerialize: ser(req),
            requestDeserialize: des(req),
            responseSerialize: ser(res),
            responseDeserialize: des(res),
            originalName: camelCase(m.name),
          };
        }
        if (name === 'etcdserverpb.KV') {
          const slow = service.Range.responseDeserialize;
          service.Range.responseDeserialize = (buf) => {
            try {
              return decodeRangeResponse(buf);
            } catch {
              return slow(buf); // anything unusual: protobufjs decides (and reports)
            }
          };
          service.Range.responseDeserialize.fast = decodeRangeResponse; // for the build-time check
        }
        def[name] = service;
      } else if (obj.nestedArray) {
        visit(obj, name);
      }
    }
  };
  visit(root, '');
  return def;
})();`;
}

/**
 * The esbuild plugin that rewrites etcd3's lib/connection-pool.js, after checking that the
 * installed etcd3 is the version the patch fits and that the replacement behaves like
 * proto-loader's loadSync. `projectRoot` is where etcd3 is resolved from.
 */
export function etcd3SchemaPlugin(projectRoot: string): Plugin {
  const etcd3Dir = path.dirname(createRequire(path.join(projectRoot, 'package.json')).resolve('etcd3/package.json'));
  const version = (JSON.parse(readFileSync(path.join(etcd3Dir, 'package.json'), 'utf8')) as { version: string }).version;
  if (version !== ETCD3_PATCHED_VERSION) {
    throw new Error(`etcd3 ${version} is installed; its schema patch (src/subnet/etcd3-schema-patch.ts) fits ${ETCD3_PATCHED_VERSION}`);
  }
  // Resolve etcd3's dependencies the way its own files do.
  const etcdRequire = createRequire(path.join(etcd3Dir, 'lib', 'connection-pool.js'));
  const protoFile = path.join(etcd3Dir, 'proto', 'rpc.proto');
  const replacement = replacementSource(JSON.stringify(prunedSchema(etcdRequire, protoFile)));
  checkReplacement(etcdRequire, protoFile, replacement);
  return {
    name: 'etcd3-schema',
    setup(b) {
      b.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
        const src = readFileSync(args.path, 'utf8');
        if (!src.includes(LOAD_CALL) || !src.includes(LOADER_REQUIRE)) throw new Error(`${args.path}: etcd3's schema loading changed; update src/subnet/etcd3-schema-patch.ts`);
        // proto-loader is then unused here; not loading it saves ~20 ms (it parses protobuf's
        // descriptor.proto at load). grpc-js still loads it lazily for channelz/ORCA, if ever.
        return { contents: src.replace(LOAD_CALL, replacement).replace(LOADER_REQUIRE, ''), loader: 'js' };
      });
    },
  };
}
