/*
 * Named network namespace files (/run/netns/<name>): what `ip netns add/del` does, without
 * running `ip`, and so that twill and iproute2 (and runtimes, CNI tooling) coexist.
 *
 * What bit before (KERNEL-NOTES.md, "Network namespace files and iproute2"): iproute2 makes
 * /run/netns a shared recursive bind mount of itself before its first mount there. A namespace
 * file mounted on a plain /run/netns is then shadowed by that bind mount: a copy sits on top,
 * the original stays underneath, and unlink() through the path fails with EBUSY forever (the
 * dentry is still a mount point in this mount namespace). So:
 *  - netnsDirShared(dir): before creating a file, do exactly what iproute2 does: make `dir`
 *    shared (MS_SHARED|MS_REC); if it is not a mount point yet (EINVAL), bind-mount it on
 *    itself (MS_BIND|MS_REC) and try again. Mounts made after that propagate to every copy.
 *  - netnsCreate(path): a short-lived thread unshares a new network namespace and bind-mounts
 *    its /proc/thread-self/ns/net on `path` (an existing empty file).
 *  - netnsDelete(path): umount2(MNT_DETACH), then unlink. When unlink still says EBUSY (a
 *    namespace shadowed by an older twill), a short-lived thread takes a private copy of the
 *    mount namespace (unshare(CLONE_NEWNS) + MS_REC|MS_PRIVATE: nothing it does there
 *    propagates back), peels off whatever covers the file in that copy (the file's own mounts,
 *    then the bind mounts of its directory) and unlinks it there, where it is no mount point.
 *    The kernel then lazily detaches the mounts on that file in every mount namespace
 *    (vfs_unlink -> detach_mounts, Linux >= 3.18), ours included. The copy dies with the thread.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi_util.h"
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static int one_path_arg(napi_env env, napi_callback_info info, char *path, size_t len) {
  return tw_only_string(env, info, path, len) && path[0] == '/';
}

/* netnsDirShared(dir): iproute2's netns_add preamble. */
static napi_value netns_dir_shared(napi_env env, napi_callback_info info) {
  char dir[4096];
  if (!one_path_arg(env, info, dir, sizeof dir)) return tw_throw_type(env, "netnsDirShared(absolute path)");
  int made_bind = 0;
  while (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0) {
    if (errno != EINVAL || made_bind) return tw_throw_errno(env, errno, "mount(MS_SHARED|MS_REC)");
    if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0) return tw_throw_errno(env, errno, "mount(MS_BIND|MS_REC)");
    made_bind = 1;
  }
  return NULL;
}

typedef struct { const char *path; int err; const char *what; } ns_arg_t;

static void *create_thread(void *p) {
  ns_arg_t *a = (ns_arg_t *)p;
  /* unshare affects only this short-lived thread; its new namespace survives through the
   * bind mount. */
  if (unshare(CLONE_NEWNET) < 0) { a->err = errno; a->what = "unshare(CLONE_NEWNET)"; return NULL; }
  if (mount("/proc/thread-self/ns/net", a->path, "none", MS_BIND, NULL) < 0) { a->err = errno; a->what = "mount(bind netns)"; return NULL; }
  return NULL;
}

static napi_value run_thread(napi_env env, void *(*fn)(void *), ns_arg_t *a) {
  pthread_t t;
  int r = pthread_create(&t, NULL, fn, a);
  if (r != 0) return tw_throw_errno(env, r, "pthread_create");
  pthread_join(t, NULL);
  if (a->err) return tw_throw_errno(env, a->err, a->what);
  return NULL;
}

/* netnsCreate(path): `path` must exist as an empty file; it becomes a persistent namespace. */
static napi_value netns_create(napi_env env, napi_callback_info info) {
  char path[4096];
  if (!one_path_arg(env, info, path, sizeof path)) return tw_throw_type(env, "netnsCreate(absolute path)");
  ns_arg_t a = { path, 0, NULL };
  return run_thread(env, create_thread, &a);
}

static void *unshadow_thread(void *p) {
  ns_arg_t *a = (ns_arg_t *)p;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", a->path);
  dirname(dir);
  if (unshare(CLONE_NEWNS) < 0) { a->err = errno; a->what = "unshare(CLONE_NEWNS)"; return NULL; }
  /* Before anything else: nothing done in this copy may propagate to the real namespace. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) { a->err = errno; a->what = "mount(MS_REC|MS_PRIVATE)"; return NULL; }
  for (int i = 0; i < 64; i++) {
    if (unlink(a->path) == 0 || errno == ENOENT) { a->err = 0; return NULL; }
    if (errno != EBUSY) break;
    /* Still a mount point here: peel the file's own mounts first, then the directory's. */
    if (umount2(a->path, MNT_DETACH) == 0) continue;
    if (umount2(dir, MNT_DETACH) == 0) continue;
    errno = EBUSY;
    break;
  }
  a->err = errno;
  a->what = "unlink(shadowed netns file)";
  return NULL;
}

/* netnsDelete(path) -> true when removed, false when it was not there. */
static napi_value netns_delete(napi_env env, napi_callback_info info) {
  char path[4096];
  if (!one_path_arg(env, info, path, sizeof path)) return tw_throw_type(env, "netnsDelete(absolute path)");
  napi_value out;
  /* Every mount stacked on the file (ours, and copies a later bind of the directory made). */
  int i = 0;
  while (i++ < 64 && umount2(path, MNT_DETACH) == 0) {}
  if (errno != EINVAL && errno != ENOENT) return tw_throw_errno(env, errno, "umount2");
  int gone = unlink(path) == 0 ? 0 : errno;
  if (gone == 0 || gone == ENOENT) {
    napi_get_boolean(env, gone == 0, &out);
    return out;
  }
  errno = gone;
  if (errno != EBUSY) return tw_throw_errno(env, errno, "unlink");
  ns_arg_t a = { path, 0, NULL };
  napi_value r = run_thread(env, unshadow_thread, &a);
  if (a.err) return r; /* the exception is pending */
  napi_get_boolean(env, true, &out);
  return out;
}

napi_value twill_netns_files_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "netnsDirShared", NULL, netns_dir_shared, NULL, NULL, NULL, napi_default, NULL },
    { "netnsCreate", NULL, netns_create, NULL, NULL, NULL, napi_default, NULL },
    { "netnsDelete", NULL, netns_delete, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
