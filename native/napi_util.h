/* Shared N-API helpers for twill's native files: errors carry `code` (errno name), `errno`
 * and `syscall`, so TypeScript branches on codes, never on text. */
#ifndef TWILL_NAPI_UTIL_H
#define TWILL_NAPI_UTIL_H
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

napi_value tw_throw_errno(napi_env env, int err, const char *syscall);
napi_value tw_throw_type(napi_env env, const char *text);
/* The first `n` arguments into argv (n of them: missing ones read as undefined); 0 when fewer
 * than `n` were passed. Extra arguments are ignored. */
int tw_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv);
int tw_arg_i32(napi_env env, napi_value v, int32_t *out);
int tw_arg_u32(napi_env env, napi_value v, uint32_t *out);
int tw_arg_bool(napi_env env, napi_value v, bool *out);
int tw_arg_buf(napi_env env, napi_value v, void **data, size_t *len);
/* For functions of one argument: an int32 (an fd), or an external handle (non-NULL). */
int tw_only_i32(napi_env env, napi_callback_info info, int32_t *out);
int tw_only_external(napi_env env, napi_callback_info info, void **out);
/* ... or a string that fits `len` bytes with its NUL. */
int tw_only_string(napi_env env, napi_callback_info info, char *buf, size_t len);

#endif
