/*
 * The caller's view of the filesystem, for `twill serve` (src/cni/server.ts).
 *
 * The warm CNI server must resolve every path of a call (CNI_NETNS, the config's subnetFile
 * and dataDir, and whatever the plugin opens on the way, /proc/sys included) exactly as the
 * Node plugin would, which runs in the caller's mount namespace and root. The server often
 * runs in another one (systemd's PrivateTmp/ProtectHome give every service its own mount
 * namespace; a runtime may run in a private one, e.g. with its own /run). Resolving through
 * /proc/<pid>/root is not enough: absolute symlinks met on the way (/var/run -> /run) are
 * followed in the walker's own root, not the caller's. So for the length of one synchronous
 * call the main thread enters the caller's mount namespace, root and working directory:
 *
 *   fsViewEnter(pid) -> 0 same view as ours: nothing done
 *                       1 entered: call fsViewReturn() when the call is done
 *                      -1 cannot take that view (the caller is gone, another PID namespace
 *                         whose /proc would not show this thread): the server must decline
 *   fsViewReturn()   back to our own view; aborts the process if that fails (running on in
 *                    a caller's filesystem would silently misdirect everything after).
 *
 * setns(CLONE_NEWNS) refuses a thread that shares its fs_struct (root, cwd) with other threads,
 * so the main thread unshares CLONE_FS once: libuv's threadpool keeps the process's view and
 * never follows. Only synchronous work between enter and return sees the caller's files.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi_util.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int fs_unshared = 0;
static int saved_mnt = -1, saved_root = -1, saved_cwd = -1;

static int same_file(int a, int b) {
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void close_all(int *fds, int n) {
  for (int i = 0; i < n; i++) if (fds[i] >= 0) close(fds[i]);
}

/* Enters mount namespace `mnt`, then root `root` and cwd `cwd` (fds). 0 or an errno. */
static int take_view(int mnt, int root, int cwd) {
  if (setns(mnt, CLONE_NEWNS) < 0) return errno;
  if (fchdir(root) < 0 || chroot(".") < 0 || fchdir(cwd) < 0) return errno;
  return 0;
}

static napi_value fs_view_enter(napi_env env, napi_callback_info info) {
  int32_t pid;
  napi_value out;
  if (!tw_only_i32(env, info, &pid) || pid <= 0) return tw_throw_type(env, "fsViewEnter(pid)");
  if (saved_mnt >= 0) return tw_throw_errno(env, EBUSY, "fsViewEnter (already entered)");
  char p[64];
  /* 0..2: the caller's mount ns, root, cwd; 3..5: ours; 6, 7: the PID namespaces. */
  int fd[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };
  const char *what[3] = { "ns/mnt", "root", "cwd" };
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "/proc/%d/%s", pid, what[i]);
    fd[i] = open(p, (i == 0 ? O_RDONLY : O_PATH | O_DIRECTORY) | O_CLOEXEC);
  }
  fd[3] = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
  fd[4] = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  fd[5] = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  snprintf(p, sizeof p, "/proc/%d/ns/pid", pid);
  fd[6] = open(p, O_RDONLY | O_CLOEXEC);
  fd[7] = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  for (int i = 0; i < 8; i++) {
    if (fd[i] < 0) { close_all(fd, 8); napi_create_int32(env, -1, &out); return out; }
  }
  int pid_ns_same = same_file(fd[6], fd[7]);
  close_all(fd + 6, 2);
  if (same_file(fd[0], fd[3]) && same_file(fd[1], fd[4])) {
    close_all(fd, 6);
    napi_create_int32(env, 0, &out);
    return out;
  }
  if (!pid_ns_same) { close_all(fd, 6); napi_create_int32(env, -1, &out); return out; }
  if (!fs_unshared) {
    if (unshare(CLONE_FS) < 0) { int e = errno; close_all(fd, 6); return tw_throw_errno(env, e, "unshare(CLONE_FS)"); }
    fs_unshared = 1;
  }
  int e = take_view(fd[0], fd[1], fd[2]);
  close_all(fd, 3);
  saved_mnt = fd[3];
  saved_root = fd[4];
  saved_cwd = fd[5];
  if (e != 0) {
    if (take_view(saved_mnt, saved_root, saved_cwd) != 0) abort();
    close_all(fd + 3, 3);
    saved_mnt = saved_root = saved_cwd = -1;
    return tw_throw_errno(env, e, "setns(CLONE_NEWNS)/chroot");
  }
  napi_create_int32(env, 1, &out);
  return out;
}

static napi_value fs_view_return(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  if (saved_mnt < 0) return NULL;
  if (take_view(saved_mnt, saved_root, saved_cwd) != 0) abort();
  close(saved_mnt);
  close(saved_root);
  close(saved_cwd);
  saved_mnt = saved_root = saved_cwd = -1;
  return NULL;
}

napi_value twill_fs_view_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "fsViewEnter", NULL, fs_view_enter, NULL, NULL, NULL, napi_default, NULL },
    { "fsViewReturn", NULL, fs_view_return, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
