#!/usr/bin/env bash
# Installs bolt-cni where CNI runtimes (containerd, Podman, nerdctl, Nomad, cnitool) look for
# plugins: /opt/cni/bin, or CNI_BIN_DIR. A runtime execs the binary the network config's
# "type" names, so it goes in as `bolt` ("type": "bolt") and as `bolt-cni`. Both are links to
# this checkout's bin/bolt-cni, which runs the built bundle (`npm run build` first).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${CNI_BIN_DIR:-/opt/cni/bin}
[ -f "$repo/dist/cli/bolt.cjs" ] || { echo "no build: run \`npm run build\` in $repo first" >&2; exit 1; }
install -d "$dir"
for name in bolt bolt-cni; do ln -sfn "$repo/bin/bolt-cni" "$dir/$name"; done
echo "installed $dir/bolt and $dir/bolt-cni -> $repo/bin/bolt-cni"
