import { CommandError } from "../base/diagnostics.js";
import { WG_DIR, wgMountFile, wgSocketDir } from "./run-dir.js";
import type { CommandRunner, RunResult } from "./runner.js";

/**
 * The private /var/run/wireguard of a target namespace (see run-dir.ts): a mount namespace,
 * kept by a bind mount of its nsfs file at WG_DIR/NS.mnt, in which /run/wireguard is
 * WG_DIR/NS. `ensure` makes it (idempotent), `release` unmounts it. The kernel refuses to
 * keep a mount namespace on a file inside a mount with shared propagation (systemd makes `/`
 * shared), so WG_DIR is first made a private mount of its own, as `ip netns` does for
 * /run/netns.
 */

export interface Mount {
  mountPoint: string;
  fsType: string;
  shared: boolean;
}

/** /proc/self/mountinfo: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL…] - FSTYPE SOURCE SUPER`. */
export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 6) continue;
    const mountPoint = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    out.push({ mountPoint, fsType: f[dash + 1] ?? "", shared: f.slice(6, dash).some((o) => o.startsWith("shared:")) });
  }
  return out;
}

/** The mount a path lives on: the last-mounted one with the longest mount point above it. */
export function mountOf(mounts: Mount[], path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    const under = m.mountPoint === "/" || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (under && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

export const hasRuntime = (mounts: Mount[], ns: string) => mounts.some((m) => m.mountPoint === wgMountFile(ns) && m.fsType === "nsfs");

type Step = (argv: string[]) => Promise<RunResult>;

function stepper(runner: CommandRunner, signal?: AbortSignal): { step: Step; failed: (argv: string[], r: RunResult) => CommandError } {
  return {
    step: (argv) => runner.run(argv, undefined, { timeoutMs: 15_000, signal }),
    failed: (argv, r) => new CommandError(argv, r.code, r.timedOut ? `${argv[0]} did not finish within 15 s and was killed\n${r.stderr}` : r.stderr),
  };
}

async function readMounts(step: Step): Promise<Mount[]> {
  const r = await step(["cat", "/proc/self/mountinfo"]);
  return r.code === 0 ? parseMountinfo(r.stdout) : [];
}

/** Makes the target's WireGuard mount namespace unless it exists; an error names the step that failed. */
export async function ensureRuntime(runner: CommandRunner, ns: string, signal?: AbortSignal): Promise<CommandError | undefined> {
  const { step, failed } = stepper(runner, signal);
  const run = async (argv: string[]) => {
    const r = await step(argv);
    return r.code === 0 ? undefined : failed(argv, r);
  };
  let mounts = await readMounts(step);
  if (hasRuntime(mounts, ns)) return undefined;
  const dir = WG_DIR();
  const e1 = await run(["mkdir", "-p", wgSocketDir(ns), "/run/wireguard"]);
  if (e1) return e1;
  if (mountOf(mounts, dir)?.shared) {
    // Two bolts for two targets may get here at once: mkdir is the lock (one bind mount, not two stacked).
    const lock = `${dir}.setup`;
    for (let i = 0; i < 50 && (await step(["mkdir", lock])).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    try {
      mounts = await readMounts(step);
      const own = mountOf(mounts, dir);
      if (own?.shared) {
        const e2 = own.mountPoint === dir ? undefined : await run(["mount", "--bind", dir, dir]);
        const e3 = e2 ?? (await run(["mount", "--make-private", dir]));
        if (e3) return e3;
      }
    } finally {
      await step(["rmdir", lock]);
    }
  }
  const e4 = await run(["touch", wgMountFile(ns)]);
  if (e4) return e4;
  return run(["unshare", `--mount=${wgMountFile(ns)}`, "--propagation", "private", "mount", "--bind", wgSocketDir(ns), "/run/wireguard"]);
}

/** Unmounts the target's WireGuard mount namespace (its processes keep it until they end). */
export async function releaseRuntime(runner: CommandRunner, ns: string, signal?: AbortSignal): Promise<CommandError | undefined> {
  const { step, failed } = stepper(runner, signal);
  if (!hasRuntime(await readMounts(step), ns)) return undefined;
  const argv = ["umount", wgMountFile(ns)];
  const r = await step(argv);
  if (r.code !== 0) return failed(argv, r);
  await step(["rm", "-f", wgMountFile(ns)]);
  // Its socket directory too, once wireguard-go has gone from it (one left running keeps its socket there).
  await step(["rmdir", "--ignore-fail-on-non-empty", wgSocketDir(ns)]);
  return undefined;
}
