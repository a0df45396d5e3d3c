#!/usr/bin/env bash
# Installs what twill needs on a Debian machine (only what is missing, saying so), then
# installs the npm dependencies (which builds the native addon) and compiles TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "twill's lab and tests create network namespaces: run as root (sudo)." >&2
  exit 1
fi

# binary:package pairs; a package is installed only when its binary is missing.
need=(
  "etcd:etcd-server"
  "etcdctl:etcd-client"
  "ip:iproute2"
  "bridge:iproute2"
  "ping:iputils-ping"
  "iperf3:iperf3"
  "tcpdump:tcpdump"
  "wireguard-go:wireguard-go"
  "wg:wireguard-tools"
  "openssl:openssl"
  "iptables:iptables"
  "nft:nftables"
  "make:make"
  "g++:g++"
  "python3:python3"
  "systemd-analyze:systemd"
)
missing=()
for pair in "${need[@]}"; do
  bin="${pair%%:*}"; pkg="${pair##*:}"
  if ! command -v "$bin" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$bin" ] && ! [ -x "/sbin/$bin" ]; then
    missing+=("$pkg")
  fi
done
# The reference CNI plugins (chaining tests, CNI benchmark) live outside PATH.
if ! [ -x /usr/lib/cni/bridge ]; then missing+=("containernetworking-plugins"); fi
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "setup: installing missing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: system packages present"
fi

if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js >= 20 is required (apt-get install nodejs npm, or nodesource)" >&2
  exit 1
fi

echo "setup: npm ci (builds the native addon)"
npm ci --no-audit --no-fund
echo "setup: compiling TypeScript"
npm run --silent build
