#!/bin/sh
# Re-records live.json of golden cases from the real kernel (root; needs `npx tsc` first).
# For each case: a fresh netns bolt-t-golden, the case's setup.sh builds the "before" state
# (with `bolt` = the real CLI on that netns and a throwaway state dir, and $NS / $PREFIX for
# raw `ip` commands), record.mjs captures what `bolt plan` reads, then everything is deleted.
#   usage: sudo test/golden/record.sh [CASE...]      (default: every case)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NS=bolt-t-golden
PREFIX=bolt-t-golden-

cleanup() {
  for n in $(ip netns list | awk '{print $1}' | grep -E "^${NS}(-|\$)" || true); do ip netns del "$n"; done
}
trap cleanup EXIT

[ $# -gt 0 ] || set -- $(ls "$HERE/cases")
for c in "$@"; do
  dir="$HERE/cases/$c"
  cleanup
  ip netns add "$NS"
  STATE=$(mktemp -d)
  bolt() { node "$ROOT/bin/bolt.js" "$@" --netns "$NS" --netns-prefix "$PREFIX" --state-dir "$STATE" --log-level error >/dev/null; }
  if [ -f "$dir/setup.sh" ]; then (cd "$dir" && . ./setup.sh); fi
  node "$HERE/record.mjs" "$dir"
  rm -rf "$STATE"
done
