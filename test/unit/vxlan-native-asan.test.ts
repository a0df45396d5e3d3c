// "Never crash the daemon on malformed input", checked rather than hoped: native/userspace.c's
// receive path (classification, checksum recognition, TCP merging, oversize frames) and send
// path (vnet header, software TSO, UDP GSO message building and its fallback) are compiled
// into a harness with AddressSanitizer and UBSan and fed valid TCP trains, mutated ones and
// noise. Every buffer is allocated at exactly its length, so a read one byte past the end
// aborts the harness. No network: TAP writes go to /dev/null, sends to an AF_UNIX socket that
// refuses them. The N-API glue is compiled out (TWILL_USERSPACE_NO_NAPI). Needs gcc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SOURCE = path.join(ROOT, 'native', 'userspace.c');
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
const skip = !hasGcc ? 'gcc not installed' : !fs.existsSync(SOURCE) ? 'native/userspace.c missing' : false;

const HARNESS = String.raw`
#define TWILL_USERSPACE_NO_NAPI
#include SOURCE_FILE

static uint64_t rs = 88172645463325252ULL;
static uint32_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (uint32_t)rs; }
static const uint8_t OWN[6] = { 0x0e, 0, 0, 0, 2, 2 }, PEER[6] = { 0x0e, 0, 0, 0, 1, 1 };

/* A well-formed Ethernet/IPv4/TCP frame with timestamps; checksum complete or partial. */
static size_t tcp_frame(uint8_t *f, size_t pl, uint32_t seq, uint8_t flags, int partial) {
  memcpy(f, OWN, 6); memcpy(f + 6, PEER, 6); f[12] = 0x08; f[13] = 0;
  uint8_t *ip = f + 14, *th = ip + 20;
  memset(ip, 0, 20 + 32);
  ip[0] = 0x45; wbe16(ip + 2, (uint16_t)(20 + 32 + pl)); wbe16(ip + 4, (uint16_t)rnd()); ip[6] = 0x40; ip[8] = 64; ip[9] = 6;
  uint8_t a[8] = { 10, 244, 1, 2, 10, 244, 2, 3 }; memcpy(ip + 12, a, 8);
  ipv4_set_checksum(ip, 20);
  wbe16(th, 40000); wbe16(th + 2, 5201); wbe32(th + 4, seq); wbe32(th + 8, 777); th[12] = 8 << 4; th[13] = flags; wbe16(th + 14, 500);
  th[20] = 1; th[21] = 1; th[22] = 8; th[23] = 10; wbe32(th + 24, 1234); wbe32(th + 28, 5678);
  for (size_t i = 0; i < pl; i++) th[32 + i] = (uint8_t)rnd();
  uint64_t ph = pseudo4(ip + 12, 6, 32 + (uint32_t)pl);
  if (partial) put16(th + 16, csum_fold(ph));
  else put16(th + 16, (uint16_t)~csum_fold(csum_partial(th, 32 + pl, ph)));
  return 14 + 20 + 32 + pl;
}

static us_t U;
static view_t V;

static void rx_case(rxin_t *in, uint64_t *c) {
  static uint8_t scratch[70000];
  size_t len = 0;
  int seg = 0, kind = rnd() % 5;
  uint32_t seq = rnd();
  if (kind == 0) {
    /* a GRO train: equal datagrams (last may be shorter), consecutive TCP segments of one flow */
    size_t pl = 1 + rnd() % 1400, n = 1 + rnd() % 40;
    int partial = rnd() & 1;
    for (size_t k = 0; k < n && len + 8 + 66 + pl < sizeof scratch; k++) {
      size_t this_pl = (k + 1 == n) ? 1 + rnd() % pl : pl;
      uint8_t *d = scratch + len;
      memcpy(d, V.vx, 8);
      size_t fl = tcp_frame(d + 8, this_pl, seq, (k + 1 == n && (rnd() & 1)) ? 0x18 : 0x10, partial);
      seq += (uint32_t)this_pl;
      if (k == 0) seg = (int)(8 + fl);
      len += 8 + fl;
    }
    if (rnd() % 3 == 0) for (int m = 0; m < 4; m++) scratch[rnd() % len] ^= (uint8_t)(1 + rnd() % 255); /* corrupt it */
  } else if (kind == 1) {
    /* one oversize superframe, as a same-machine kernel VTEP sends it */
    memcpy(scratch, V.vx, 8);
    len = 8 + tcp_frame(scratch + 8, 1 + rnd() % 60000, seq, 0x10, rnd() & 1);
    if (rnd() & 1) scratch[8 + 14 + 2 + (rnd() & 1)] = (uint8_t)rnd(); /* lie about the length */
  } else if (kind == 2) {
    /* a valid header and a mangled inner IPv4 header */
    memcpy(scratch, V.vx, 8);
    len = 8 + tcp_frame(scratch + 8, rnd() % 200, seq, (uint8_t)rnd(), 0);
    for (int m = 0; m < 3; m++) scratch[8 + 12 + rnd() % 60] = (uint8_t)rnd();
    len = 1 + rnd() % len;
  } else if (kind == 3) {
    /* a header that claims a tiny packet, and the buffer ends exactly where it says */
    memcpy(scratch, V.vx, 8);
    tcp_frame(scratch + 8, 0, seq, 0x10, 0);
    uint8_t *ip = scratch + 8 + 14;
    unsigned ihl = 20 + 4 * (rnd() % 3), tot = ihl + rnd() % 30;
    ip[0] = (uint8_t)(0x40 | ihl / 4); ip[9] = (rnd() & 1) ? 6 : 17;
    wbe16(ip + 2, (uint16_t)tot);
    ipv4_set_checksum(ip, ihl);
    len = 8 + 14 + tot;
  } else {
    /* noise, sometimes behind a valid header */
    len = rnd() % 3000;
    for (size_t i = 0; i < len; i++) scratch[i] = (uint8_t)rnd();
    if (len >= 8 && (rnd() & 1)) memcpy(scratch, V.vx, 8);
    seg = (rnd() % 4 == 0) ? (int)(rnd() % 200) : 0;
  }
  uint8_t *m = malloc(len ? len : 1); /* exactly len bytes: ASan sees any overread */
  memcpy(m, scratch, len);
  uint32_t src = (rnd() % 8) ? htonl(0xc0000201) : htonl(0xc0000263);
  U.vnet = (rnd() % 4) != 0;
  rx_message(&U, &V, in, c, m, len, seg, rnd() % 64 == 0, src);
  rx_emit(&U, &V, in, c);
  free(m);
}

static void tx_case(txout_t *o, uint64_t *c) {
  static uint8_t scratch[70000];
  size_t n;
  U.vnet = (rnd() % 4) != 0;
  U.udp_gso = 1;
  uint8_t *f = scratch + (U.vnet ? VNET_HLEN : 0);
  struct virtio_net_hdr vh;
  memset(&vh, 0, sizeof vh);
  int kind = rnd() % 3;
  if (kind == 0) {
    /* a TSO superframe, sometimes with a tiny MSS (hundreds of segments: mid-frame flushes) */
    size_t fl = tcp_frame(f, rnd() % 65000, rnd(), 0x18, 1);
    memcpy(f, PEER, 6);
    vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM; vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    vh.gso_size = (uint16_t)((rnd() % 8 == 0) ? 1 + rnd() % 100 : 1 + rnd() % 1500);
    vh.csum_start = 34; vh.csum_offset = 16; vh.hdr_len = 66;
    n = fl;
    if (rnd() % 3 == 0) for (int m = 0; m < 3; m++) f[12 + rnd() % 60] = (uint8_t)rnd();
  } else if (kind == 1) {
    /* a small frame with random offload metadata */
    n = rnd() % 2000;
    for (size_t i = 0; i < n; i++) f[i] = (uint8_t)rnd();
    if (n >= 6) memcpy(f, (rnd() & 1) ? PEER : OWN, 6);
    vh.flags = (uint8_t)rnd(); vh.gso_type = (uint8_t)rnd(); vh.gso_size = (uint16_t)rnd();
    vh.csum_start = (uint16_t)(rnd() % 2100); vh.csum_offset = (uint16_t)(rnd() % 2100);
  } else {
    n = rnd() % 200;
    for (size_t i = 0; i < n; i++) f[i] = (uint8_t)rnd();
  }
  if (U.vnet) { memcpy(scratch, &vh, sizeof vh); n += VNET_HLEN; }
  if (U.vnet && rnd() % 16 == 0) n = rnd() % VNET_HLEN;
  uint8_t *b = malloc(n ? n : 1);
  memcpy(b, scratch, n);
  tx_frame(&U, &V, o, c, b, n);
  tx_flush(&U, o, c);
  free(b);
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 10000;
  memset(&U, 0, sizeof U);
  U.tap_fd = open("/dev/null", O_WRONLY);
  U.udp_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  U.stop_fd = eventfd(0, 0);
  pthread_mutex_init(&U.mu, NULL);
  U.vni = 1; U.port = 8472; U.mtu = 1450; memcpy(U.own_mac, OWN, 6); U.gen = 1; U.udp_gso = 1;
  fdb_entry_t e[2] = { { { 0x0e, 0, 0, 0, 1, 1 }, { 192, 0, 2, 1 } }, { { 0x0e, 0, 0, 0, 3, 3 }, { 192, 0, 2, 3 } } };
  U.entries = e; U.n = 2;
  memset(&V, 0, sizeof V);
  V.gen = (uint64_t)-1;
  view_refresh(&U, &V);
  rxin_t *in = calloc(1, sizeof *in);
  txout_t *o = calloc(1, sizeof *o);
  uint64_t c[C_COUNT] = { 0 };
  for (long i = 0; i < iters; i++) { rx_case(in, c); tx_case(o, c); }
  uint64_t dropped = 0;
  for (int i = C_RX_DROP_SHORT; i <= C_RX_DROP_TAP_WRITE_ERROR; i++) dropped += c[i];
  printf("{\"rxFrames\":%llu,\"rxMerged\":%llu,\"rxDropped\":%llu,\"tapWrites\":%llu,\"txFrames\":%llu,\"txGso\":%llu,\"txDropped\":%llu,\"txSendErrors\":%llu}\n",
    (unsigned long long)c[C_RX_FRAMES], (unsigned long long)c[C_RX_MERGED], (unsigned long long)dropped, (unsigned long long)c[C_RX_TAP_WRITES],
    (unsigned long long)c[C_TX_FRAMES], (unsigned long long)c[C_TX_GSO_FRAMES],
    (unsigned long long)(c[C_TX_DROP_UNKNOWN_MAC] + c[C_TX_DROP_MULTICAST] + c[C_TX_DROP_RUNT] + c[C_TX_DROP_BAD_OFFLOAD]),
    (unsigned long long)c[C_TX_DROP_SEND_ERROR]);
  free(in); free(o); view_free(&V);
  return 0;
}
`;

test('native rx/tx paths under ASan+UBSan: 15k hostile rx messages and 15k tx frames, no memory error', { skip, timeout: 300_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-asan-'));
  try {
    const src = path.join(dir, 'harness.c');
    fs.writeFileSync(src, HARNESS.replace('SOURCE_FILE', JSON.stringify(SOURCE)));
    const bin = path.join(dir, 'harness');
    const cc = spawnSync('gcc', [
      '-O1', '-g', '-std=gnu11', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer',
      '-Wno-unused-function', src, '-o', bin, '-lpthread',
    ], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `harness did not compile:\n${cc.stderr}`);
    const run = spawnSync(bin, ['15000'], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1' } });
    assert.equal(run.status, 0, `sanitizer report:\n${run.stderr.slice(0, 4000)}`);
    const stats = JSON.parse(run.stdout) as Record<string, number>;
    // The cases reached the interesting paths, not just the first check.
    assert.ok(stats['rxMerged']! > 1000, `merging exercised (${run.stdout})`);
    assert.ok(stats['rxFrames']! > 10_000 && stats['rxDropped']! > 1000, `accept and drop paths exercised (${run.stdout})`);
    assert.ok(stats['txGso']! > 1000 && stats['txSendErrors']! > 1000, `TSO and send-failure paths exercised (${run.stdout})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
