/*
 * twill's native seam: only what Node.js cannot do by itself, no policy.
 *
 * - netlink sockets with the options a daemon needs (the `netlink` npm package's own socket
 *   aborts the process on ENOBUFS and cannot set these): NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK,
 *   SO_RCVBUFFORCE, a receive timeout, multicast groups, and creation inside another network
 *   namespace (setns is per thread, the socket's namespace is fixed at creation: enter, create,
 *   return, all synchronously on the calling thread).
 * - a readability watcher (uv_poll) so the event socket is drained from the event loop.
 * - entering a network namespace and sd_notify (AF_UNIX datagram); named namespace files
 *   (create, delete, coexisting with iproute2) live in netns_files.c.
 * - the uid and pid at the other end of a unix socket (SO_PEERCRED; Node's net module does not
 *   tell); taking that caller's filesystem view is fs_view.c.
 * - the userspace VXLAN datapath lives in userspace.c (TAP open, forwarding threads).
 *
 * Errors are thrown as Error objects with `code` (errno name), `errno` and `syscall`,
 * so TypeScript can branch on codes, never on text.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi_util.h"
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/netlink.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

/* Optional string argument: returns 1 and fills buf when a string, 0 when null/undefined. */
static int get_opt_string(napi_env env, napi_value v, char *buf, size_t len, int *ok) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  *ok = 1;
  if (t == napi_null || t == napi_undefined) return 0;
  size_t n;
  if (t != napi_string || napi_get_value_string_utf8(env, v, buf, len, &n) != napi_ok || n >= len - 1) {
    *ok = 0;
    return 0;
  }
  return 1;
}

/* netlinkOpen(protocol, groups[], netnsPath|null, rcvbuf, timeoutMs, nonblock) -> fd */
static napi_value netlink_open(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!tw_args(env, info, 6, argv)) return tw_throw_type(env, "netlinkOpen: 6 arguments expected");
  int32_t protocol, rcvbuf, timeout_ms;
  bool nonblock;
  if (!tw_arg_i32(env, argv[0], &protocol) || !tw_arg_i32(env, argv[3], &rcvbuf) ||
      !tw_arg_i32(env, argv[4], &timeout_ms) || !tw_arg_bool(env, argv[5], &nonblock))
    return tw_throw_type(env, "netlinkOpen: bad argument types");
  uint32_t ngroups = 0;
  bool is_array = false;
  napi_is_array(env, argv[1], &is_array);
  if (!is_array) return tw_throw_type(env, "netlinkOpen: groups must be an array");
  napi_get_array_length(env, argv[1], &ngroups);
  char path[4096];
  int ok;
  int has_ns = get_opt_string(env, argv[2], path, sizeof path, &ok);
  if (!ok) return tw_throw_type(env, "netlinkOpen: netns must be a path or null");

  int orig = -1, target = -1;
  if (has_ns) {
    orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig < 0) return tw_throw_errno(env, errno, "open(/proc/thread-self/ns/net)");
    target = open(path, O_RDONLY | O_CLOEXEC);
    if (target < 0) { int e = errno; close(orig); return tw_throw_errno(env, e, "open(netns)"); }
    if (setns(target, CLONE_NEWNET) < 0) {
      int e = errno; close(orig); close(target); return tw_throw_errno(env, e, "setns");
    }
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), protocol);
  int sock_err = errno;
  if (has_ns) {
    /* Returning to our own namespace must not fail silently: abort rather than keep running
     * the whole daemon inside a pod's namespace. */
    if (setns(orig, CLONE_NEWNET) < 0) abort();
    close(orig);
    close(target);
  }
  if (fd < 0) return tw_throw_errno(env, sock_err, "socket(AF_NETLINK)");

  int one = 1;
  /* Best effort: older kernels lack these; the TS side works without them. */
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one);
  if (rcvbuf > 0) {
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &rcvbuf, sizeof rcvbuf);
  }
  if (timeout_ms > 0) {
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno; close(fd); return tw_throw_errno(env, e, "bind(netlink)");
  }
  for (uint32_t i = 0; i < ngroups; i++) {
    napi_value g;
    int32_t group;
    napi_get_element(env, argv[1], i, &g);
    if (!tw_arg_i32(env, g, &group)) { close(fd); return tw_throw_type(env, "netlinkOpen: group must be a number"); }
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
      int e = errno; close(fd); return tw_throw_errno(env, e, "setsockopt(NETLINK_ADD_MEMBERSHIP)");
    }
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

/* netlinkSend(fd, buffer) -> bytes sent. */
static napi_value netlink_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (!tw_args(env, info, 2, argv) || !tw_arg_i32(env, argv[0], &fd) || !tw_arg_buf(env, argv[1], &data, &len))
    return tw_throw_type(env, "netlinkSend(fd, buffer)");
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return tw_throw_errno(env, errno, "sendto(netlink)");
  napi_value out;
  napi_create_int64(env, n, &out);
  return out;
}

/* netlinkRecv(fd, buffer) -> bytes, or -errno for EAGAIN/EWOULDBLOCK (timeouts and empty
 * non-blocking queues are ordinary, not exceptional). MSG_TRUNC reports the real size so a
 * short buffer is detected instead of silently cutting a message. */
static napi_value netlink_recv(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (!tw_args(env, info, 2, argv) || !tw_arg_i32(env, argv[0], &fd) || !tw_arg_buf(env, argv[1], &data, &len))
    return tw_throw_type(env, "netlinkRecv(fd, buffer)");
  ssize_t n;
  do {
    n = recv(fd, data, len, MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    napi_value out;
    napi_create_int32(env, -EAGAIN, &out);
    return out;
  }
  if (n < 0) return tw_throw_errno(env, errno, "recv(netlink)");
  if ((size_t)n > len) return tw_throw_errno(env, EMSGSIZE, "recv(netlink)");
  napi_value out;
  napi_create_int64(env, n, &out);
  return out;
}


/* ---- readability watcher ---- */

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  int closing;
} watcher_t;

static void on_close(uv_handle_t *h) {
  watcher_t *w = (watcher_t *)h->data;
  free(w);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  watcher_t *w = (watcher_t *)p->data;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, global, arg;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &global);
  napi_create_int32(env, status, &arg);
  napi_value result;
  /* make_callback runs microtasks after the JS callback, like any libuv-driven callback. */
  napi_async_context ctx = NULL;
  napi_value resource_name;
  napi_create_string_utf8(env, "twill.netlinkWatch", NAPI_AUTO_LENGTH, &resource_name);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_async_init(env, resource, resource_name, &ctx);
  napi_status st = napi_make_callback(env, ctx, global, cb, 1, &arg, &result);
  napi_async_destroy(env, ctx);
  if (st == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

static void watcher_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)data; (void)hint;
  /* The watcher is freed by stop(); a watcher never stopped lives as long as the process. */
}

/* watchReadable(fd, callback(status)) -> handle; stopWatch(handle) */
static napi_value watch_readable(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  napi_valuetype t;
  if (!tw_args(env, info, 2, argv) || !tw_arg_i32(env, argv[0], &fd)) return tw_throw_type(env, "watchReadable(fd, cb)");
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) return tw_throw_type(env, "watchReadable: callback must be a function");
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  watcher_t *w = calloc(1, sizeof *w);
  if (!w) return tw_throw_errno(env, ENOMEM, "calloc");
  w->env = env;
  napi_create_reference(env, argv[1], 1, &w->callback);
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r < 0) { napi_delete_reference(env, w->callback); free(w); return tw_throw_errno(env, -r, "uv_poll_init"); }
  w->poll.data = w;
  r = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (r < 0) { napi_delete_reference(env, w->callback); uv_close((uv_handle_t *)&w->poll, on_close); return tw_throw_errno(env, -r, "uv_poll_start"); }
  napi_value ext;
  napi_create_external(env, w, watcher_finalize, NULL, &ext);
  return ext;
}

static napi_value stop_watch(napi_env env, napi_callback_info info) {
  watcher_t *w;
  if (!tw_only_external(env, info, (void **)&w)) return tw_throw_type(env, "stopWatch(handle)");
  if (w->closing) return NULL;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->callback);
  uv_close((uv_handle_t *)&w->poll, on_close);
  return NULL;
}

/* unrefWatch(handle): let the process exit while only this watcher is active. */
static napi_value unref_watch(napi_env env, napi_callback_info info) {
  watcher_t *w;
  if (!tw_only_external(env, info, (void **)&w)) return tw_throw_type(env, "unrefWatch(handle)");
  if (!w->closing) uv_unref((uv_handle_t *)&w->poll);
  return NULL;
}


/* sdNotify(state) -> true when sent, false when NOTIFY_SOCKET is unset. */
static napi_value sd_notify(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char state[1024];
  size_t n;
  if (!tw_args(env, info, 1, argv) || napi_get_value_string_utf8(env, argv[0], state, sizeof state, &n) != napi_ok)
    return tw_throw_type(env, "sdNotify(state)");
  napi_value out;
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) { napi_get_boolean(env, false, &out); return out; }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t plen = strlen(path);
  if (plen >= sizeof sa.sun_path) return tw_throw_errno(env, ENAMETOOLONG, "sd_notify");
  memcpy(sa.sun_path, path, plen);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = 0; /* abstract namespace */
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return tw_throw_errno(env, errno, "socket(AF_UNIX)");
  ssize_t r = sendto(fd, state, n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen));
  int e = errno;
  close(fd);
  if (r < 0) return tw_throw_errno(env, e, "sendto(NOTIFY_SOCKET)");
  napi_get_boolean(env, true, &out);
  return out;
}

/* ---- entering a network namespace ---- */

/* netnsEnter(path) -> fd of the namespace we were in; the calling (main) thread is now in
 * `path`. Anything created or forked synchronously from here on lives there (netlink
 * sockets, child processes, /proc/sys opens). Always pair with netnsReturn, no await between. */
static napi_value netns_enter(napi_env env, napi_callback_info info) {
  char path[4096];
  if (!tw_only_string(env, info, path, sizeof path)) return tw_throw_type(env, "netnsEnter(path)");
  int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) return tw_throw_errno(env, errno, "open(/proc/thread-self/ns/net)");
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) { int e = errno; close(orig); return tw_throw_errno(env, e, "open(netns)"); }
  if (setns(target, CLONE_NEWNET) < 0) { int e = errno; close(orig); close(target); return tw_throw_errno(env, e, "setns"); }
  close(target);
  napi_value out;
  napi_create_int32(env, orig, &out);
  return out;
}

static napi_value netns_return(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!tw_only_i32(env, info, &fd)) return tw_throw_type(env, "netnsReturn(fd)");
  /* Staying in a foreign namespace would silently misdirect everything after: abort. */
  if (setns(fd, CLONE_NEWNET) < 0) abort();
  close(fd);
  return NULL;
}

/* peerCred(fd) -> { uid, pid } of the process that connected (or listens) at the other end;
 * pid is 0 when that process is outside our PID namespace. */
static napi_value peer_cred(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!tw_only_i32(env, info, &fd)) return tw_throw_type(env, "peerCred(fd)");
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return tw_throw_errno(env, errno, "getsockopt(SO_PEERCRED)");
  napi_value out, uid, pid;
  napi_create_object(env, &out);
  napi_create_uint32(env, cred.uid, &uid);
  napi_create_int32(env, cred.pid, &pid);
  napi_set_named_property(env, out, "uid", uid);
  napi_set_named_property(env, out, "pid", pid);
  return out;
}

napi_value twill_userspace_init(napi_env env, napi_value exports); /* native/userspace.c */
napi_value twill_udp_init(napi_env env, napi_value exports); /* native/udp_df.c */
napi_value twill_netns_files_init(napi_env env, napi_value exports); /* native/netns_files.c */
napi_value twill_fs_view_init(napi_env env, napi_value exports); /* native/fs_view.c */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "netlinkOpen", NULL, netlink_open, NULL, NULL, NULL, napi_default, NULL },
    { "netlinkSend", NULL, netlink_send, NULL, NULL, NULL, napi_default, NULL },
    { "netlinkRecv", NULL, netlink_recv, NULL, NULL, NULL, napi_default, NULL },
    { "watchReadable", NULL, watch_readable, NULL, NULL, NULL, napi_default, NULL },
    { "stopWatch", NULL, stop_watch, NULL, NULL, NULL, napi_default, NULL },
    { "unrefWatch", NULL, unref_watch, NULL, NULL, NULL, napi_default, NULL },
    { "sdNotify", NULL, sd_notify, NULL, NULL, NULL, napi_default, NULL },
    { "netnsEnter", NULL, netns_enter, NULL, NULL, NULL, napi_default, NULL },
    { "netnsReturn", NULL, netns_return, NULL, NULL, NULL, napi_default, NULL },
    { "peerCred", NULL, peer_cred, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  twill_netns_files_init(env, exports); /* native/netns_files.c: netnsDirShared/Create/Delete */
  twill_fs_view_init(env, exports); /* native/fs_view.c: fsViewEnter/Return */
  twill_udp_init(env, exports); /* native/udp_df.c: udpOpen */
  return twill_userspace_init(env, exports); /* native/userspace.c: the us* functions */
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
