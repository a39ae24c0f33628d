import { BoltError, CommandError } from "./diagnostics.js";
import { inNetns } from "../exec/runner.js";
import type { CommandRunner, Ns, RunOptions, RunResult } from "../exec/runner.js";

/** A command a reader ran, with what it printed (the daemon's plan memo runs the same ones again to compare). */
export interface Ran {
  argv: string[];
  stdin?: string;
  result: RunResult;
}

/**
 * Reads live kernel state once per pass: identical reads requested by different
 * reconcilers share one process (memoized promises), and independent reads run in parallel.
 */
export class LiveReader {
  private readonly memo = new Map<string, Promise<unknown>>();
  /** one process per distinct command line and stdin, whichever method asked for it */
  private readonly raw = new Map<string, Promise<RunResult>>();
  /** every command run through this reader (the kinds' own `io.runner` calls too), by command line and stdin */
  readonly ran = new Map<string, Ran>();
  readonly runner: CommandRunner;
  constructor(
    runner: CommandRunner,
    readonly target: Ns,
    /** batch reads already answered (apply reads back inside the process that wrote) */
    private readonly primed: Map<string, unknown[]> = new Map(),
  ) {
    this.runner = {
      run: (argv, stdin, opts) => {
        const p = runner.run(argv, stdin, opts);
        p.then(
          (result) => void this.ran.set(runKey(argv, stdin), { argv, ...(stdin === undefined ? {} : { stdin }), result }),
          () => {},
        );
        return p;
      },
    };
  }

  /** A command's result, run once per reader whoever asks (the kinds' reads, the plan memo's re-check). */
  once(argv: string[], stdin?: string, opts?: RunOptions): Promise<RunResult> {
    const key = runKey(argv, stdin);
    let p = this.raw.get(key);
    if (!p) {
      p = this.runner.run(argv, stdin, opts);
      this.raw.set(key, p);
    }
    return p;
  }

  /** `ip -j ARGS` in `ns` (default: the target), parsed. Retries dumps the kernel interrupted. */
  ipJson<T = unknown>(args: string[], ns: Ns = this.target): Promise<T> {
    const key = `${ns ?? ""}\0ip\0${args.join("\0")}`;
    let p = this.memo.get(key);
    if (!p) {
      p = this.readJson(inNetns(ns, ["ip", "-j", ...args]));
      this.memo.set(key, p);
    }
    return p as Promise<T>;
  }

  /**
   * Several reads in one process: `ip -j -batch -` prints one JSON document per line, so
   * reading inside many namespaces costs one process per namespace, not one per query.
   */
  ipJsonBatch(lines: string[], ns: Ns = this.target): Promise<unknown[]> {
    const key = batchKey(ns, lines);
    const primed = this.primed.get(key);
    if (primed) return Promise.resolve(primed);
    // Memoized like single reads: kinds asking the same namespace the same questions share a process.
    let p = this.memo.get(`batch\0${key}`) as Promise<unknown[]> | undefined;
    if (!p) {
      p = this.readBatch(lines, ns);
      this.memo.set(`batch\0${key}`, p);
    }
    return p;
  }

  /**
   * `ip -j -force -batch -`: every line runs even where some fail (a `route get` for an
   * unreachable address); the answers of the lines that succeeded, in order, unaligned.
   */
  async ipJsonBatchLoose(lines: string[], ns: Ns = this.target, flags: string[] = []): Promise<unknown[]> {
    const argv = inNetns(ns, ["ip", "-j", ...flags, "-force", "-batch", "-"]);
    const r = await this.once(argv, lines.join("\n") + "\n");
    if (r.code !== 0 && !/Command failed -:\d+/.test(r.stderr)) throw new CommandError(argv, r.code, r.stderr);
    return r.stdout
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => parseToolJson(argv, l));
  }

  private async readBatch(lines: string[], ns: Ns): Promise<unknown[]> {
    const argv = inNetns(ns, ["ip", "-j", "-batch", "-"]);
    const r = await this.once(argv, lines.join("\n") + "\n");
    if (r.code !== 0) throw new CommandError(argv, r.code, r.stderr);
    return r.stdout
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => parseToolJson(argv, l));
  }

  /** Any command's result in `ns`, memoized (`opts`: a time limit shorter than the runner's). */
  exec(argv: string[], ns: Ns = this.target, opts?: RunOptions): Promise<RunResult> {
    return this.once(inNetns(ns, argv), undefined, opts);
  }

  private async readJson(argv: string[]): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const r = await (attempt === 0 ? this.once(argv) : this.runner.run(argv));
      // A dump racing with changes can end early ("Dump was interrupted and may be inconsistent"): read again.
      if (r.code === 0 && !/Dump was interrupted/i.test(r.stderr)) return parseToolJson(argv, r.stdout);
      if (attempt >= 3 || !/Dump was interrupted/i.test(r.stderr)) throw new CommandError(argv, r.code, r.stderr);
    }
  }
}

/** A tool that exits 0 with output that is not JSON (truncated, a wrapper's banner) is a one-line error naming it. */
export function parseToolJson(argv: string[], text: string): unknown {
  if (!text.trim()) return [];
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BoltError(
      `\`${argv.join(" ")}\` exited 0 but printed no valid JSON (${(e as Error).message}; ${text.length} bytes): is the tool on PATH the real one?`,
    );
  }
}

export function runKey(argv: string[], stdin: string | undefined): string {
  return `${argv.join("\0")}\n${stdin ?? ""}`;
}

export function batchKey(ns: Ns, lines: string[]): string {
  return `${ns ?? ""}\0${lines.join("\n")}`;
}

/** The subset of `ip -j -d link show` bolt reads. */
export interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  master?: string;
  ifalias?: string;
  address?: string;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
  operstate?: string;
}

export interface IpAddrInfo {
  family: "inet" | "inet6";
  local: string;
  prefixlen: number;
  scope?: string;
  /** IPv4: the broadcast address, when the address was added with one (`broadcast +`) */
  broadcast?: string;
}

export interface IpAddr {
  ifname: string;
  addr_info: IpAddrInfo[];
}

export interface IpRoute {
  dst: string;
  dev?: string;
  gateway?: string;
  protocol?: string;
  type?: string;
  table?: string;
}
