# Sourced by the fake tools: finds the real TOOL on PATH, skipping the directory the fake
# was started from (the tests put that directory first on PATH, so `ip netns exec … sysctl`
# and bolt's own lookups reach the fake, and the fake must not find itself).
find_real() {
  local tool=$1 self_dir d dd
  self_dir=$(cd "$(dirname "$0")" && pwd -P)
  local IFS=:
  for d in $PATH; do
    [ -n "$d" ] || continue
    dd=$(cd "$d" 2>/dev/null && pwd -P) || continue
    [ "$dd" = "$self_dir" ] && continue
    if [ -f "$d/$tool" ] && [ -x "$d/$tool" ]; then
      printf '%s\n' "$d/$tool"
      return 0
    fi
  done
  echo "fake $tool: no real $tool on PATH outside $self_dir" >&2
  return 127
}
