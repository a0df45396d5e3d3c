/*
 * twill-cni front-end: the executable a container runtime runs as the `twill` CNI plugin.
 *
 * Why it exists: starting Node.js costs ~2.5x a whole ADD of the reference plugins, so a plugin
 * that is a Node program can never be as quick as they are. This binary starts in about a
 * millisecond and hands the call (the CNI_* environment and stdin) to `twill serve`, the same
 * plugin kept warm in one long-running process of this network namespace, then relays the
 * answer (stdout, exit status). When no server answers it execs the Node plugin itself, so the
 * server is only ever a speed-up:
 *   - no server listening (not started, restarting, crashed)  -> Node plugin
 *   - the listener is not root (someone squatting the name)    -> Node plugin
 *   - the server closes without a whole answer, or is silent   -> Node plugin
 *     (it declines so when it cannot take this process's filesystem view: it runs each call
 *     in the caller's mount namespace and root, found by our PID, see native/fs_view.c)
 * No CNI logic lives here: it never looks inside the JSON, it only carries bytes.
 *
 * The rendezvous is an abstract unix socket, "@twill-cni". Abstract names belong to a network
 * namespace, so each host (and each lab host, which is a namespace) reaches its own server with
 * no path to configure. Either side checks the other is root (SO_PEERCRED): the server runs CNI
 * commands as root for whoever asks, and a non-root squatter must not answer for it.
 *
 * Wire format (all integers big-endian u32):
 *   request:  "TWC1" envLen stdinLen  env (NUL-terminated "K=V" entries)  stdin
 *   answer:   "TWR1" exitCode stdoutLen  stdout
 * Only CNI_* variables and TWILL_CNI_DEBUG are sent: they are all the plugin reads.
 *
 * The Node plugin is found relative to this binary's own location (TWILL_FALLBACK_REL, set in
 * binding.gyp; src/install/layout.ts puts both files there), and it gets the stdin bytes back
 * through a memfd, since they were already read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef TWILL_FALLBACK_REL
#define TWILL_FALLBACK_REL "../../twill/libexec/twill-cni"
#endif
#define SOCKET_NAME "twill-cni"
#define MAX_STDIN (4u << 20)  /* what the server accepts; more goes to the Node plugin directly */
#define ANSWER_TIMEOUT_MS 60000

extern char **environ;

typedef struct { char *p; size_t len, cap; } buf_t;

static int buf_put(buf_t *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  return 0;
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* All of stdin (a missing or closed stdin is empty). -1 on a read error. */
static int read_stdin(buf_t *in) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(0, chunk, sizeof chunk);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { struct pollfd p = { 0, POLLIN, 0 }; poll(&p, 1, -1); continue; }
      return errno == EBADF ? 0 : -1;
    }
    if (buf_put(in, chunk, (size_t)n) < 0) return -1;
  }
}

/* On the server's socket, send() with MSG_NOSIGNAL: a server gone mid-request is an error to
 * fall back on, not a SIGPIPE. stdout and the memfd are plain files: write(). */
static int write_all(int fd, const char *p, size_t n, int is_socket) {
  while (n > 0) {
    ssize_t w = is_socket ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads exactly n bytes; -1 on EOF, an error or `timeout_ms` of silence. */
static int read_full(int fd, unsigned char *p, size_t n, int timeout_ms) {
  while (n > 0) {
    struct pollfd pfd = { fd, POLLIN, 0 };
    int r = poll(&pfd, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    ssize_t got = read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

static int wanted_var(const char *kv) {
  return strncmp(kv, "CNI_", 4) == 0 || strncmp(kv, "TWILL_CNI_DEBUG=", 16) == 0;
}

/* Asks the server. Returns the exit status to use, or -1 when the Node plugin must run. */
static int ask_server(const buf_t *in) {
  if (in->len > MAX_STDIN) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  memcpy(sa.sun_path + 1, SOCKET_NAME, sizeof SOCKET_NAME - 1); /* sun_path[0] = 0: abstract */
  /* An abstract name is all `addrlen` bytes. Node 20 (libuv) binds the whole NUL-padded
   * sun_path; later libuv binds just the name: try the exact name, then the padded one. */
  socklen_t exact = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + sizeof SOCKET_NAME - 1);
  if (connect(fd, (struct sockaddr *)&sa, exact) < 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  struct ucred cred;
  socklen_t clen = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.uid != 0) {
    fprintf(stderr, "twill: ignoring @%s: its listener is not root\n", SOCKET_NAME);
    close(fd);
    return -1;
  }

  buf_t req = { 0 };
  unsigned char head[12];
  if (buf_put(&req, head, sizeof head) < 0) { close(fd); return -1; }
  size_t env_start = req.len;
  for (char **e = environ; *e; e++) {
    if (wanted_var(*e) && buf_put(&req, *e, strlen(*e) + 1) < 0) { free(req.p); close(fd); return -1; }
  }
  uint32_t env_len = (uint32_t)(req.len - env_start);
  if (in->len && buf_put(&req, in->p, in->len) < 0) { free(req.p); close(fd); return -1; }
  memcpy(req.p, "TWC1", 4);
  put_u32((unsigned char *)req.p + 4, env_len);
  put_u32((unsigned char *)req.p + 8, (uint32_t)in->len);
  int sent = write_all(fd, req.p, req.len, 1);
  free(req.p);
  if (sent < 0) { close(fd); return -1; }
  shutdown(fd, SHUT_WR);

  unsigned char ans[12];
  if (read_full(fd, ans, sizeof ans, ANSWER_TIMEOUT_MS) < 0 || memcmp(ans, "TWR1", 4) != 0) { close(fd); return -1; }
  uint32_t code = get_u32(ans + 4), out_len = get_u32(ans + 8);
  if (code > 255 || out_len > (64u << 20)) { close(fd); return -1; }
  unsigned char *out = malloc(out_len ? out_len : 1);
  if (!out || read_full(fd, out, out_len, ANSWER_TIMEOUT_MS) < 0) { free(out); close(fd); return -1; }
  close(fd);
  /* The answer is whole: from here on it is the result, even if stdout is gone. */
  write_all(1, (const char *)out, out_len, 0);
  free(out);
  return (int)code;
}

/* Runs the Node plugin with the original environment, arguments and stdin bytes. */
static void exec_node_plugin(char **argv, const buf_t *in) {
  char self[PATH_MAX], target[PATH_MAX + sizeof TWILL_FALLBACK_REL + 1];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) { perror("twill: readlink(/proc/self/exe)"); exit(1); }
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash) *slash = 0;
  snprintf(target, sizeof target, "%s/%s", self, TWILL_FALLBACK_REL);

  int mfd = memfd_create("twill-cni-stdin", MFD_CLOEXEC);
  if (mfd < 0 || (in->len && write_all(mfd, in->p, in->len, 0) < 0) || lseek(mfd, 0, SEEK_SET) < 0 || dup2(mfd, 0) < 0) {
    perror("twill: passing stdin on");
    exit(1);
  }
  argv[0] = target;
  execv(target, argv);
  fprintf(stderr, "twill: cannot run %s: %s\n", target, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  (void)argc;
  buf_t in = { 0 };
  /* Run by hand (no CNI_COMMAND): the Node plugin prints what this is, as the reference plugins
   * do; stdin is not read (a terminal would wait for it). */
  const char *cmd = getenv("CNI_COMMAND");
  if (cmd == NULL || *cmd == 0) exec_node_plugin(argv, &in);
  /* On a read error the Node plugin gets what was read, and reports undecodable input. */
  int code = read_stdin(&in) == 0 ? ask_server(&in) : -1;
  if (code >= 0) return code;
  exec_node_plugin(argv, &in);
  return 1;
}
