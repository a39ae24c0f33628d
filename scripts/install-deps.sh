#!/usr/bin/env bash
# Installs what bolt and its tests need on Debian/Ubuntu (as root), then the npm packages.
# Idempotent: apt runs only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(iproute2 nftables iptables wireguard-tools wireguard-go bpftool clang iputils-ping netcat-openbsd python3 make g++ ca-certificates etcd-server etcd-client)
pkgs+=(bird2) # [routing.bgp]: bolt starts its own bird per target; the package's host-wide bird.service is switched off below
pkgs+=(iperf3 libbpf-dev llvm) # traffic control: throughput tests; eBPF: bpf_helpers.h, llvm-objdump/llvm-readelf for section checks
pkgs+=(dnsmasq-base udhcpc) # networks.*.dhcp: bolt's own dnsmasq per bridge (the binary, without the package's system service); udhcpc is the VM stand-in's DHCP client in the tests
pkgs+=(containernetworking-plugins) # bolt-cni: the reference portmap (chained after it) and bridge plugins, in /usr/lib/cni
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Stopping needs a running systemd; without one (a container, a chroot) the package started nothing.
if command -v systemctl >/dev/null && systemctl is-enabled bird >/dev/null 2>&1; then
  systemctl disable bird >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then systemctl stop bird; fi
fi
if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "bolt needs Node.js >= 20.19 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
npm ci --no-audit --no-fund
