{
  "targets": [
    {
      "target_name": "twill_native",
      "sources": ["native/twill_native.c", "native/userspace.c", "native/napi_util.c"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"]
    }
  ]
}
