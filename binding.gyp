{
  "targets": [
    {
      "target_name": "twill_native",
      "sources": ["native/twill_native.c", "native/netns_files.c", "native/fs_view.c", "native/userspace.c", "native/napi_util.c", "native/udp_df.c"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"]
    },
    {
      "target_name": "twill-cni",
      "type": "executable",
      "sources": ["native/cni_front.c"],
      "defines": ["TWILL_FALLBACK_REL=\"../../twill/libexec/twill-cni\""],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"]
    }
  ]
}
