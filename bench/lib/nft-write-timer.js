// A PATH wrapper for `nft` that times each write (`nft -f …` without `-c`) of the real nft
// and appends its wall clock in microseconds to a log: bolt's nft write step, measured from
// inside bolt's own apply (bolt reaches nft by PATH, also through `ip netns exec NS nft`).
// Checks (`nft -c`) and reads pass straight through, untimed.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";

/** { env, writes() }: the env to run bolt with, and the write times (ms) logged since the last call. */
export function nftWriteTimer(dir) {
  const real = execFileSync("sh", ["-c", "command -v nft"], { encoding: "utf8" }).trim();
  const bin = mkdtempSync(join(dir, "nft-timer-"));
  const log = join(bin, "writes.log");
  writeFileSync(
    join(bin, "nft"),
    `#!/bin/sh
case " $* " in
  *" -c "*) exec "${real}" "$@" ;;
  *" -f "*)
    s=$(date +%s%N)
    "${real}" "$@"
    rc=$?
    e=$(date +%s%N)
    echo $(( (e - s) / 1000 )) >> "${log}"
    exit $rc
    ;;
esac
exec "${real}" "$@"
`,
  );
  chmodSync(join(bin, "nft"), 0o755);
  let seen = 0;
  return {
    env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ""}` },
    writes() {
      const all = existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean).map(Number) : [];
      const fresh = all.slice(seen).map((us) => us / 1000);
      seen = all.length;
      return fresh;
    },
  };
}
