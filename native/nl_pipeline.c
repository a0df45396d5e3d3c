/*
 * netlinkPipeline: two rtnetlink request streams at once, on two sockets of one namespace, with
 * stream B held back chunk by chunk until stream A has caught up. No policy: which messages go
 * in which stream, and what waits for what, is decided in TypeScript (src/dataplane/reconciler.ts,
 * src/netlink/socket.ts); this file only sends, waits for each chunk's acknowledgement and hands
 * back the replies.
 *
 * Why: rtnetlink does a request's work inside sendmsg() on the sender's thread. A cold start
 * with 10,000 peers writes 10,000 FDB entries, 10,000 neighbours and 10,000 routes; the routes
 * take ~90% of the kernel's time, and the kernel runs them concurrently with neighbour and FDB
 * writes from another thread. Stream A (FDB + neighbours) runs on the calling thread, stream B
 * (routes) on a second thread, and route chunk k is only sent once the FDB and neighbour
 * entries it relies on (the A chunks it names) are acknowledged: a route still never exists
 * before its neighbour and FDB entry.
 *
 * netlinkPipeline(fdA, chunksA[], lastSeqsA[], fdB, chunksB[], lastSeqsB[], needA[])
 *   -> [repliesA[], repliesB[]]
 * Each chunk is framed messages whose last one asks for an ACK with sequence lastSeqs[i]; a
 * chunk is complete when the kernel's NLMSG_ERROR for that sequence arrives. B chunk i is sent
 * once needA[i] A chunks are complete. The replies of each chunk come back as one Buffer of raw
 * netlink messages for TypeScript to decode. Synchronous, like the rest of the request socket:
 * the caller's event loop waits, exactly as it does for one stream.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi_util.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>

typedef struct {
  const void *data;
  size_t len;
  uint32_t last_seq;
  uint32_t need_a; /* B only */
  char *reply;
  size_t reply_len, reply_cap;
} chunk_t;

typedef struct {
  int fd;
  chunk_t *chunks;
  uint32_t n;
} stream_t;

typedef struct {
  stream_t a, b;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint32_t a_done;  /* A chunks complete */
  int failed;       /* set by either side: the other stops */
  int err_a, err_b; /* errno of the failing call */
  const char *what_a, *what_b;
} pipeline_t;

static int append(chunk_t *c, const char *p, size_t n) {
  if (c->reply_len + n > c->reply_cap) {
    size_t cap = c->reply_cap ? c->reply_cap * 2 : 4096;
    while (cap < c->reply_len + n) cap *= 2;
    char *r = realloc(c->reply, cap);
    if (!r) return -1;
    c->reply = r;
    c->reply_cap = cap;
  }
  memcpy(c->reply + c->reply_len, p, n);
  c->reply_len += n;
  return 0;
}

/* Sends one chunk and collects replies until its ACK. 0, or an errno (what names the call). */
static int run_chunk(int fd, chunk_t *c, char *buf, size_t buflen, const char **what) {
  if (c->len == 0) return 0;
  if (tw_nl_send(fd, c->data, c->len) < 0) { *what = "sendto(netlink)"; return errno; }
  for (;;) {
    ssize_t n = tw_nl_recv(fd, buf, buflen);
    if (n < 0) { *what = "recv(netlink)"; return errno == EWOULDBLOCK ? ETIMEDOUT : errno; }
    if ((size_t)n > buflen) { *what = "recv(netlink)"; return EMSGSIZE; }
    if (append(c, buf, (size_t)n) < 0) { *what = "malloc"; return ENOMEM; }
    int done = 0;
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == c->last_seq) done = 1;
    }
    if (done) return 0;
  }
}

static void *stream_b(void *p) {
  pipeline_t *pl = (pipeline_t *)p;
  char *buf = malloc(64 * 1024);
  if (!buf) {
    pthread_mutex_lock(&pl->mu);
    pl->failed = 1; pl->err_b = ENOMEM; pl->what_b = "malloc";
    pthread_mutex_unlock(&pl->mu);
    return NULL;
  }
  for (uint32_t i = 0; i < pl->b.n; i++) {
    chunk_t *c = &pl->b.chunks[i];
    pthread_mutex_lock(&pl->mu);
    while (pl->a_done < c->need_a && !pl->failed) pthread_cond_wait(&pl->cv, &pl->mu);
    int stop = pl->failed;
    pthread_mutex_unlock(&pl->mu);
    if (stop) break;
    const char *what = NULL;
    int e = run_chunk(pl->b.fd, c, buf, 64 * 1024, &what);
    if (e) {
      pthread_mutex_lock(&pl->mu);
      pl->failed = 1; pl->err_b = e; pl->what_b = what;
      pthread_cond_broadcast(&pl->cv);
      pthread_mutex_unlock(&pl->mu);
      break;
    }
  }
  free(buf);
  return NULL;
}

/* Reads chunks (Buffers) and their sequence numbers (and needA for B) from JS arrays. */
static int read_stream(napi_env env, napi_value fd_v, napi_value bufs, napi_value seqs, napi_value needs, stream_t *s) {
  if (!tw_arg_i32(env, fd_v, &s->fd)) return 0;
  bool is_arr;
  if (napi_is_array(env, bufs, &is_arr) != napi_ok || !is_arr) return 0;
  uint32_t n, ns, nn = 0;
  napi_get_array_length(env, bufs, &n);
  napi_get_array_length(env, seqs, &ns);
  if (needs) napi_get_array_length(env, needs, &nn);
  if (ns != n || (needs && nn != n)) return 0;
  s->n = n;
  s->chunks = calloc(n ? n : 1, sizeof(chunk_t));
  if (!s->chunks) return 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value b, q;
    napi_get_element(env, bufs, i, &b);
    napi_get_element(env, seqs, i, &q);
    void *data;
    size_t len;
    uint32_t seq;
    if (!tw_arg_buf(env, b, &data, &len) || napi_get_value_uint32(env, q, &seq) != napi_ok) return 0;
    s->chunks[i].data = data;
    s->chunks[i].len = len;
    s->chunks[i].last_seq = seq;
    if (needs) {
      napi_value v;
      napi_get_element(env, needs, i, &v);
      if (napi_get_value_uint32(env, v, &s->chunks[i].need_a) != napi_ok) return 0;
    }
  }
  return 1;
}

static void free_stream(stream_t *s) {
  if (!s->chunks) return;
  for (uint32_t i = 0; i < s->n; i++) free(s->chunks[i].reply);
  free(s->chunks);
}

static napi_value replies(napi_env env, stream_t *s) {
  napi_value arr;
  napi_create_array_with_length(env, s->n, &arr);
  for (uint32_t i = 0; i < s->n; i++) {
    napi_value b;
    void *dst;
    napi_create_buffer(env, s->chunks[i].reply_len, &dst, &b);
    if (s->chunks[i].reply_len) memcpy(dst, s->chunks[i].reply, s->chunks[i].reply_len);
    napi_set_element(env, arr, i, b);
  }
  return arr;
}

static napi_value netlink_pipeline(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pipeline_t pl;
  memset(&pl, 0, sizeof pl);
  napi_value out = NULL;
  if (argc < 7 || !read_stream(env, argv[0], argv[1], argv[2], NULL, &pl.a) || !read_stream(env, argv[3], argv[4], argv[5], argv[6], &pl.b)) {
    free_stream(&pl.a);
    free_stream(&pl.b);
    return tw_throw_type(env, "netlinkPipeline(fdA, chunksA, seqsA, fdB, chunksB, seqsB, needA)");
  }
  pthread_mutex_init(&pl.mu, NULL);
  pthread_cond_init(&pl.cv, NULL);
  pthread_t tb;
  int r = pthread_create(&tb, NULL, stream_b, &pl);
  if (r != 0) {
    pthread_mutex_destroy(&pl.mu);
    pthread_cond_destroy(&pl.cv);
    free_stream(&pl.a);
    free_stream(&pl.b);
    return tw_throw_errno(env, r, "pthread_create");
  }
  char *buf = malloc(64 * 1024);
  for (uint32_t i = 0; i < pl.a.n; i++) {
    const char *what = "malloc";
    int e = buf ? run_chunk(pl.a.fd, &pl.a.chunks[i], buf, 64 * 1024, &what) : ENOMEM;
    pthread_mutex_lock(&pl.mu);
    if (e) { pl.failed = 1; pl.err_a = e; pl.what_a = what; }
    else pl.a_done = i + 1;
    int stop = pl.failed;
    pthread_cond_broadcast(&pl.cv);
    pthread_mutex_unlock(&pl.mu);
    if (stop) break;
  }
  free(buf);
  pthread_mutex_lock(&pl.mu);
  if (pl.a_done < pl.a.n && !pl.failed) pl.failed = 1; /* cannot happen; never leave B waiting */
  pl.a_done = pl.a.n;
  pthread_cond_broadcast(&pl.cv);
  pthread_mutex_unlock(&pl.mu);
  pthread_join(tb, NULL);
  pthread_mutex_destroy(&pl.mu);
  pthread_cond_destroy(&pl.cv);
  if (pl.err_a || pl.err_b) {
    tw_throw_errno(env, pl.err_a ? pl.err_a : pl.err_b, pl.err_a ? pl.what_a : pl.what_b);
  } else {
    napi_value a = replies(env, &pl.a), b = replies(env, &pl.b);
    napi_create_array_with_length(env, 2, &out);
    napi_set_element(env, out, 0, a);
    napi_set_element(env, out, 1, b);
  }
  free_stream(&pl.a);
  free_stream(&pl.b);
  return out;
}

napi_value twill_pipeline_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "netlinkPipeline", NULL, netlink_pipeline, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
