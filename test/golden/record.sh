#!/bin/sh
# Re-records live.json of golden cases from the real kernel (root; needs `npm run build` first).
# For each case: a fresh netns bolt-t-golden, the case's setup.sh builds the "before" state
# (with `bolt` = the real CLI on that netns and a throwaway state dir, and $NS / $PREFIX for
# raw `ip` commands), record.mjs captures what `bolt plan` reads, then everything is deleted:
# the namespaces, what a setup's `bolt apply` started in them (wireguard-go: it lives as long
# as its tun device and keeps its namespace alive, so the devices go first, then any process
# still in one of these namespaces, by PID), wireguard-go's sockets for those devices, and
# /etc/netns/<namespace> (magic DNS hosts files).
#   usage: sudo test/golden/record.sh [CASE...]      (default: every case)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NS=bolt-t-golden
PREFIX=bolt-t-golden-

cleanup() {
  for n in $(ip netns list | awk '{print $1}' | grep -E "^${NS}(-|\$)" || true); do
    # tun devices (wireguard-go's, and endpoint taps); a socket only for bolt's WireGuard ones (alias wg=).
    for dev in $(ip -n "$n" -o link show type tun | awk -F': ' '{print $2}'); do
      wg=$(ip -n "$n" -o link show dev "$dev" | grep -c ',wg=' || true)
      ip -n "$n" link del "$dev" || true
      if [ "$wg" != 0 ]; then rm -f "/var/run/wireguard/$dev.sock"; fi
    done
    i=0
    while [ -n "$(ip netns pids "$n")" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    for pid in $(ip netns pids "$n"); do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "/etc/netns/$n"
    ip netns del "$n"
  done
}
trap cleanup EXIT

[ $# -gt 0 ] || set -- $(ls "$HERE/cases")
for c in "$@"; do
  dir="$HERE/cases/$c"
  cleanup
  # Key files must be 0600 (git does not keep the mode).
  find "$dir" -type f \( -name '*.key' -o -name '*.psk' \) -exec chmod 600 {} +
  ip netns add "$NS"
  STATE=$(mktemp -d)
  bolt() { node "$ROOT/bin/bolt.js" "$@" --netns "$NS" --netns-prefix "$PREFIX" --state-dir "$STATE" --log-level error >/dev/null; }
  if [ -f "$dir/setup.sh" ]; then (cd "$dir" && . ./setup.sh); fi
  node "$HERE/record.mjs" "$dir"
  rm -rf "$STATE"
done
