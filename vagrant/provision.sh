#!/usr/bin/env bash
# Provisions one VM of the Vagrant lab (see Vagrantfile): Node.js 20, etcd (first VM only),
# twill built from /twill-src and installed with `twillctl install`, the network config in
# etcd, and the twilld and twill-cni services. Safe to re-run (`vagrant provision`): every step checks first.
set -euo pipefail

: "${TWILL_NODE_IP:?set by the Vagrantfile}"
: "${TWILL_ETCD_IP:?set by the Vagrantfile}"
TWILL_RUN_ETCD="${TWILL_RUN_ETCD:-0}"
NODE_VERSION="${NODE_VERSION:-v20.20.2}"
NETWORK_CONFIG='{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472}}'
SRC=/twill-src
export DEBIAN_FRONTEND=noninteractive

say() { echo "provision[$(hostname)]: $*"; }

# --- system packages: a C toolchain for the native addon, curl/xz for Node.js, etcd on tw1;
# wireguard-go and wireguard-tools for the wireguard backend (twilld drives wireguard-go
# through its UAPI until its kernel WireGuard driver is wired; wg is for the operator).
pkgs=(ca-certificates curl xz-utils make g++ python3 iproute2 nftables wireguard-go wireguard-tools)
[ "$TWILL_RUN_ETCD" = 1 ] && pkgs+=(etcd-server etcd-client)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- Node.js 20 (Debian 12 ships 18): the official build, checked against its SHASUMS256.txt
if ! command -v node >/dev/null 2>&1 || [ "$(node --version)" != "$NODE_VERSION" ]; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "unsupported architecture $(uname -m)" >&2; exit 1 ;;
  esac
  tarball="node-${NODE_VERSION}-linux-${arch}.tar.xz"
  say "installing Node.js ${NODE_VERSION}"
  tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/$tarball" "https://nodejs.org/dist/${NODE_VERSION}/${tarball}"
  curl -fsSL -o "$tmp/SHASUMS256.txt" "https://nodejs.org/dist/${NODE_VERSION}/SHASUMS256.txt"
  (cd "$tmp" && grep " ${tarball}\$" SHASUMS256.txt | sha256sum -c -)
  tar -xJf "$tmp/$tarball" -C /usr/local --strip-components=1 --no-same-owner
  rm -rf "$tmp"
fi
NODE=$(command -v node)

# --- etcd on the first VM, listening on the private network
if [ "$TWILL_RUN_ETCD" = 1 ]; then
  want="ETCD_NAME=$(hostname)
ETCD_DATA_DIR=/var/lib/etcd/default
ETCD_LISTEN_CLIENT_URLS=http://${TWILL_ETCD_IP}:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://${TWILL_ETCD_IP}:2379"
  if [ "$(cat /etc/default/etcd 2>/dev/null)" != "$want" ]; then
    say "configuring etcd on ${TWILL_ETCD_IP}:2379"
    printf '%s\n' "$want" > /etc/default/etcd
    systemctl restart etcd
  fi
  systemctl enable --now etcd
  for _ in $(seq 1 30); do etcdctl --endpoints http://127.0.0.1:2379 endpoint health >/dev/null 2>&1 && break; sleep 1; done
  # Written once: an edited network config survives re-provisioning.
  if [ -z "$(etcdctl --endpoints http://127.0.0.1:2379 get --print-value-only /coreos.com/network/config)" ]; then
    say "writing the network config ${NETWORK_CONFIG}"
    etcdctl --endpoints http://127.0.0.1:2379 put /coreos.com/network/config "$NETWORK_CONFIG" >/dev/null
  fi
fi

# --- build twill from the synced source, then install it the operators' way
say "building twill (npm ci, tsc)"
cd "$SRC"
npm ci --no-audit --no-fund
npm run --silent build

# The underlay NIC is the one holding this VM's private-network address (eth1 on these boxes).
iface=$(ip -o -4 addr show | awk -v ip="$TWILL_NODE_IP" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }')
iface="${iface:-eth1}"
say "twillctl install --etcd-endpoints http://${TWILL_ETCD_IP}:2379 --iface ${iface}"
"$NODE" dist/src/cmd/twillctl.js install --etcd-endpoints "http://${TWILL_ETCD_IP}:2379" --iface "$iface" --node "$NODE"

systemctl daemon-reload
systemctl enable twilld twill-cni
systemctl restart twilld twill-cni

say "waiting for twilld to be ready"
for _ in $(seq 1 60); do
  if twillctl status >/dev/null 2>&1; then break; fi
  sleep 2
done
twillctl status
twillctl leases
