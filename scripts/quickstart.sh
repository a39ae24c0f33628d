#!/usr/bin/env bash
# The Quick start: install, then apply examples/bolt-network.toml into a throwaway network
# namespace (never the host's), show the plan, prove it works, and clean up.
# Keep the namespaces for a look around with: KEEP=1 scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
ns=bolt-demo
state=$(mktemp -d)
bolt() { node bin/bolt.js --state-dir "$state" --netns "$ns" --netns-prefix "$ns-" "$@"; }
cleanup() {
  if [ "${KEEP:-}" != 1 ]; then
    bolt destroy >/dev/null 2>&1 || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$state"
  fi
}
trap cleanup EXIT
ip netns add "$ns" 2>/dev/null || true
echo "== bolt validate"; bolt validate -f examples/bolt-network.toml
echo; echo "== bolt plan"; bolt plan -f examples/bolt-network.toml
echo "== bolt apply"; bolt apply -f examples/bolt-network.toml --log-level info
echo; echo "== what the kernel has now (ip -n $ns -br addr)"; ip -n "$ns" -br addr
echo; echo "== ping from endpoint web (netns $ns-web) to game-1 and the gateway"
game1=$(bolt show --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(s.resources.find(r=>r.name==="game-1").spec.ip.split("/")[0])')
ip netns exec "$ns-web" ping -c 2 -W 1 "$game1"
ip netns exec "$ns-web" ping -c 1 -W 1 172.20.0.1
echo; echo "== second plan (must be empty)"; bolt plan -f examples/bolt-network.toml --detailed-exitcode
if [ "${KEEP:-}" = 1 ]; then echo "kept: netns $ns, state $state (bolt destroy --netns $ns --state-dir $state --netns-prefix $ns- to clean up)"; fi
