import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import type { Ns } from "../exec/runner.js";
import { MonitorLines } from "../exec/read-topics.js";
import type { Topic, Topics } from "../exec/read-topics.js";

const NFT: ReadonlySet<Topic> = new Set(["nft"]);

export interface MonitorLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

/**
 * Kernel change events for prompt drift repair: `ip monitor link address route` (rtnetlink
 * multicast groups: a link, address or route added or removed by anyone) and `nft monitor`
 * (ruleset changes) in the target namespace. Output only signals "something changed" and what
 * about (the read cache forgets those reads): the controller re-plans everything anyway
 * (level-triggered), so the events themselves are not parsed further. A monitor
 * that exits (its namespace went away, nft missing) is restarted with a growing delay.
 */
export class KernelMonitor {
  private readonly children = new Map<string, ChildProcess>();
  /** when each monitor's process started (its netlink subscription follows within moments) */
  private readonly since = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly target: Ns,
    /** `topics`: what the event is about (read-topics.ts), "all" when not known */
    private readonly onEvent: (source: string, topics: Topics) => void,
    private readonly log: MonitorLog,
  ) {}

  start(): void {
    const ns = this.target;
    // `label`: each event says whether it is a link, address, route or rule (the cache forgets only that).
    const ip = ["monitor", "label", "link", "address", "route", "rule"];
    this.run("ip", ns === null ? ["ip", ...ip] : ["ip", "-n", ns, ...ip], 0);
    this.run("nft", ns === null ? ["nft", "monitor"] : ["ip", "netns", "exec", ns, "nft", "monitor"], 0);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.children.values()) c.kill("SIGTERM");
    this.children.clear();
  }

  /**
   * Whether every monitor has been running for a moment (its subscription is in place): only
   * then may a reader trust that no event is being missed (exec/read-cache-runner.ts).
   */
  running(settleMs = 250): boolean {
    const now = Date.now();
    return ["ip", "nft"].every((n) => this.children.has(n) && now - (this.since.get(n) ?? now) >= settleMs);
  }

  /** pids of the monitor processes (the bench measures their CPU with the daemon's). */
  pids(): number[] {
    return [...this.children.values()].map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  private run(name: string, argv: string[], failures: number, deathSignal = true): void {
    if (this.stopped) return;
    const started = Date.now();
    // A daemon killed with SIGKILL cannot stop its monitors, and an `nft monitor` in a namespace
    // that sees no more events never writes (so never gets SIGPIPE): it would live on and keep
    // the namespace alive. The kernel's parent-death signal (prctl PR_SET_PDEATHSIG, through
    // util-linux setpriv; `ip netns exec` execs without a fork, so it holds) ends it with us.
    const full = deathSignal ? ["setpriv", "--pdeathsig", "KILL", "--", ...argv] : argv;
    const child = spawn(full[0]!, full.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    this.children.set(name, child);
    this.since.delete(name);
    child.on("spawn", () => this.since.set(name, Date.now()));
    let stderr = "";
    const lines = new MonitorLines();
    child.stdout!.on("data", (d: Buffer) => this.onEvent(name, name === "nft" ? NFT : lines.topics(d.toString())));
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    let missing = false;
    child.on("error", (e: NodeJS.ErrnoException) => {
      // The tool is not installed: nothing to restart.
      if (e.code === "ENOENT") missing = true;
    });
    child.on("close", (code, signal) => {
      this.children.delete(name);
      this.since.delete(name);
      if (this.stopped) return;
      if (missing && deathSignal) {
        // No setpriv here: the monitor itself, without the parent-death signal.
        this.run(name, argv, failures, false);
        return;
      }
      if (missing) {
        this.log.info({ monitor: name }, `kernel monitor: ${argv[0]} not found, ${name} events are not watched (periodic resync still repairs drift)`);
        return;
      }
      // `nft monitor` exits at once without nf_tables access; give up on it quietly after a few tries.
      const healthy = Date.now() - started > 10_000;
      const n = healthy ? 0 : failures + 1;
      if (name === "nft" && n >= 3) {
        this.log.info({ monitor: name, stderr: stderr.trim() }, "kernel monitor: nft monitor keeps exiting; nft events are not watched");
        return;
      }
      const delay = Math.min(30_000, 500 * 2 ** Math.min(n, 6));
      this.log.warn({ monitor: name, code, signal, stderr: stderr.trim(), retryMs: delay }, "kernel monitor exited; restarting");
      // Whatever happened while it was down is caught by the pass this triggers.
      this.onEvent(name, "all");
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.run(name, argv, n, deathSignal);
      }, delay);
      this.timers.add(t);
    });
  }
}
