import { wgMountFile } from "./run-dir.js";

/**
 * The CommandRunner seam: the only way bolt touches the host. argv arrays and stdin,
 * never shell strings. Tools are looked up on PATH so operators can wrap them (and
 * tests can inject faults the same way).
 */
export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
  /** the process was killed because it ran longer than `timeoutMs` */
  timedOut?: boolean;
  /** the process was killed because `signal` aborted */
  aborted?: boolean;
}

export interface RunOptions {
  /** kill the process after this long (the runner's default applies when absent) */
  timeoutMs?: number;
  /** kill the process when this aborts (a daemon stopping, a CLI interrupted) */
  signal?: AbortSignal;
}

export interface CommandRunner {
  run(argv: string[], stdin?: string, opts?: RunOptions): Promise<RunResult>;
}

/** A network namespace to run in; null means the namespace bolt itself runs in. */
export type Ns = string | null;

/**
 * Rewrites argv so it runs inside a named network namespace: `ip -n NS …` for ip itself
 * (no extra process), `ip netns exec NS …` for everything else (sysctl reads /proc/sys/net
 * of the netns it runs in, so it must be entered). wireguard-go and `wg` also enter the
 * target's WireGuard mount namespace (run-dir.ts): their control sockets are per target.
 */
export function inNetns(ns: Ns, argv: string[]): string[] {
  if (ns === null) return argv;
  if (argv[0] === "ip") return ["ip", "-n", ns, ...argv.slice(1)];
  if (argv[0] === "wg" || argv[0] === "wireguard-go") return ["nsenter", `--net=/run/netns/${ns}`, `--mount=${wgMountFile(ns)}`, "--", ...argv];
  return ["ip", "netns", "exec", ns, ...argv];
}

export function nsName(ns: Ns): string {
  return ns === null ? "the host namespace" : `netns ${ns}`;
}
