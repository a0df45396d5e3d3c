#define _GNU_SOURCE
#include "napi_util.h"
#include <stdio.h>
#include <string.h>

napi_value tw_throw_errno(napi_env env, int err, const char *syscall) {
  napi_value msg, code, error, num, sc;
  const char *name = strerrorname_np(err);
  char text[256];
  snprintf(text, sizeof text, "%s: %s (%s)", syscall, strerror(err), name ? name : "?");
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, error, "syscall", sc);
  napi_throw(env, error);
  return NULL;
}

napi_value tw_throw_type(napi_env env, const char *text) {
  napi_throw_type_error(env, "EINVAL", text);
  return NULL;
}

int tw_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  return argc >= n;
}

int tw_arg_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

int tw_arg_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

int tw_arg_bool(napi_env env, napi_value v, bool *out) {
  return napi_get_value_bool(env, v, out) == napi_ok;
}

int tw_arg_buf(napi_env env, napi_value v, void **data, size_t *len) {
  bool is = false;
  napi_is_buffer(env, v, &is);
  return is && napi_get_buffer_info(env, v, data, len) == napi_ok;
}

static int only_arg(napi_env env, napi_callback_info info, napi_value *v) {
  return tw_args(env, info, 1, v);
}

int tw_only_i32(napi_env env, napi_callback_info info, int32_t *out) {
  napi_value v;
  return only_arg(env, info, &v) && tw_arg_i32(env, v, out);
}

int tw_only_external(napi_env env, napi_callback_info info, void **out) {
  napi_value v;
  return only_arg(env, info, &v) && napi_get_value_external(env, v, out) == napi_ok && *out != NULL;
}

int tw_only_string(napi_env env, napi_callback_info info, char *buf, size_t len) {
  napi_value v;
  napi_valuetype t;
  size_t n;
  return only_arg(env, info, &v) && napi_typeof(env, v, &t) == napi_ok && t == napi_string &&
         napi_get_value_string_utf8(env, v, buf, len, &n) == napi_ok && n < len - 1;
}
