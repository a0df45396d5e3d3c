/*
 * UDP sockets whose datagrams carry DF, for probing a path at full size. No policy: the
 * caller picks the address, the port and whether DF is set; the fd is handed to Node
 * (dgram's bind({ fd })), which does all sending and receiving.
 *
 * Why native: node:dgram cannot set IP_MTU_DISCOVER. IP_PMTUDISC_PROBE sets DF and sends
 * datagrams of exactly the size asked for, ignoring any cached path MTU (IP_PMTUDISC_DO
 * would fail locally with EMSGSIZE once a smaller MTU is cached, and the probe would then
 * measure the cache, not the path).
 *
 *   udpOpen(ipv4 as uint32 host order, port, pmtuProbe) -> fd (nonblocking, close-on-exec, bound)
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi_util.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static napi_value udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t ip;
  int32_t port;
  bool probe;
  if (!tw_args(env, info, 3, argv) || !tw_arg_u32(env, argv[0], &ip) || !tw_arg_i32(env, argv[1], &port) ||
      !tw_arg_bool(env, argv[2], &probe) || port < 0 || port > 65535)
    return tw_throw_type(env, "udpOpen(ipv4: uint32, port: 0..65535, pmtuProbe: boolean)");
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return tw_throw_errno(env, errno, "socket(AF_INET, SOCK_DGRAM)");
  if (probe) {
    int v = IP_PMTUDISC_PROBE;
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v) < 0) {
      int e = errno; close(fd); return tw_throw_errno(env, e, "setsockopt(IP_MTU_DISCOVER)");
    }
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(ip);
  sa.sin_port = htons((uint16_t)port);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno; close(fd); return tw_throw_errno(env, e, "bind(udp)");
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

napi_value twill_udp_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
