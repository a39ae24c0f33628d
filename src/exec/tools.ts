import { CommandError } from "../base/diagnostics.js";
import type { Batch, OpLine } from "./command.js";
import { inNetns, nsName } from "./runner.js";
import type { CommandRunner, Ns, RunResult } from "./runner.js";
import { ensureRuntime, releaseRuntime } from "./wg-runtime.js";
import { groupDeletes } from "./link-group-delete.js";
import { runFilesBatch } from "./files-tool.js";

/**
 * The tools bolt writes with, each knowing how it batches: `ip -batch -` (one process per
 * namespace for any number of lines), `wg set IF peer … peer …` (one process per interface),
 * and plain exec (one process per op: `nft -f -` transactions, sysctl, iptables, tee). Every
 * process has a time limit and obeys an AbortSignal, so a hung tool fails its step instead of
 * wedging the apply (and the lock it holds).
 */
export interface BatchResult {
  /** how many ops of the batch are known to have taken effect */
  done: number;
  error?: CommandError;
  /** JSON answers to the read-back lines, when the batch succeeded */
  reads?: unknown[];
}

export interface ToolRunOptions {
  /** rollback: go on past failing lines */
  force?: boolean;
  /** ip only: reads to run in the same process after the writes */
  readBack?: string[];
  signal?: AbortSignal;
}

export interface Tool {
  name: string;
  /** what `--show-commands` prints before an op's args */
  prefix: string;
  /** processes one batch starts */
  processes(batch: Batch): number;
  /** can run read-back lines after its writes, in the same process (saves a read per namespace) */
  readsBack?: boolean;
  run(runner: CommandRunner, batch: Batch, o: ToolRunOptions): Promise<BatchResult>;
}

/**
 * Time limits. `BOLT_TOOL_TIMEOUT` (seconds) replaces every limit (tests of hung tools, slow
 * machines). An `ip -batch` gets more time the more lines it has (a bridge with 1000 ports:
 * ~6 s here; deleting veths is RCU-bound at ~20 ms each).
 */
export function timeoutMs(what: string, lines = 1): number {
  const env = Number(process.env.BOLT_TOOL_TIMEOUT);
  if (Number.isFinite(env) && env > 0) return env * 1000;
  switch (what) {
    case "ip":
      return 30_000 + 50 * lines;
    case "wg":
    case "wg set":
    case "wireguard-go":
      return 15_000;
    case "nft":
      return 60_000;
    default:
      return 30_000;
  }
}

/** The tool a command line runs, for limits and messages: `ip netns exec NS nft -f -` is nft. */
export function toolName(argv: string[]): string {
  if (argv[0] === "ip" && argv[1] === "netns" && argv[2] === "exec") return argv[4] ?? "ip";
  if (argv[0] === "nsenter") return argv[argv.indexOf("--") + 1] ?? "nsenter";
  return argv[0] ?? "";
}

/** One process with the tool's limit; a timeout or an abort becomes a clear stderr line. */
async function runLimited(
  runner: CommandRunner,
  argv: string[],
  stdin: string | undefined,
  what: string,
  ns: Ns,
  lines: number,
  signal?: AbortSignal,
): Promise<RunResult> {
  const limit = timeoutMs(what, lines);
  const r = await runner.run(argv, stdin, { timeoutMs: limit, signal });
  if (r.timedOut) return { ...r, code: r.code || 124, stderr: `${what} in ${nsName(ns)} did not finish within ${limit / 1000} s and was killed\n${r.stderr}` };
  if (r.aborted) return { ...r, code: r.code || 130, stderr: `${what} in ${nsName(ns)} was interrupted (bolt was asked to stop)\n${r.stderr}` };
  return r;
}

/** Tokens reach `ip -batch` unquoted: anything that could split or comment a line is refused. */
const SAFE_TOKEN = /^[^\s"'\\#;]+$/;

export function batchLine(op: OpLine): string {
  for (const t of op.args) if (!SAFE_TOKEN.test(t)) throw new Error(`internal: unsafe token in ip batch line: ${JSON.stringify(t)}`);
  return op.args.join(" ");
}

/**
 * `ip -batch -` stops at the first failing line and reports it as "Command failed -:N", so
 * lines 1..N-1 took effect. With `force` (rollback) it goes on. `ip6` is the same tool as
 * `ip -6 -batch -`: a batch line cannot carry `-6`, and some lines need it (ip files a rule
 * `from ::/0`, or one with only a fwmark, under IPv4). It reads nothing back: read-back lines
 * are the family-neutral ones of `ip`.
 */
const ipBatchTool = (six: boolean): Tool => ({
  name: six ? "ip6" : "ip",
  prefix: six ? "ip -6 " : "ip ",
  processes: () => 1,
  readsBack: !six,
  async run(runner, batch, o) {
    const readBack = o.readBack ?? [];
    // Read-back lines run in the same process after the writes; with -j, writes print nothing
    // and each read prints one JSON line.
    const argv = inNetns(batch.ns, ["ip", ...(six ? ["-6"] : []), ...(readBack.length ? ["-j"] : []), ...(o.force ? ["-force"] : []), "-batch", "-"]);
    // Rollback (force) sends its lines as they are: it must go on past failures line by line.
    const grouped = o.force ? undefined : groupDeletes(batch.ops.map(batchLine));
    const writes = grouped?.lines ?? batch.ops.map(batchLine);
    const stdin = [...writes, ...readBack].join("\n") + "\n";
    const r = await runLimited(runner, argv, stdin, "ip", batch.ns, writes.length + readBack.length, o.signal);
    if (r.code === 0) {
      if (!readBack.length) return { done: batch.ops.length };
      const reads = r.stdout
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as unknown);
      return { done: batch.ops.length, reads: reads.length === readBack.length ? reads : undefined };
    }
    const m = /Command failed -:(\d+)/.exec(r.stderr);
    const failed = m ? Number(m[1]) : undefined;
    const err = new CommandError(argv, r.code, r.stderr, failed, stdin);
    // A failing read-back line (after every write) still means all writes took effect.
    if (failed !== undefined && failed > writes.length) return { done: batch.ops.length };
    // Unknown failure point: assume everything may have happened (undo is forced and idempotent).
    if (failed === undefined || o.force) return { done: batch.ops.length, error: err };
    if (!grouped) return { done: Math.min(failed - 1, batch.ops.length), error: err };
    // A group delete that stopped half way deleted nothing: its devices get their group back.
    const regroup = grouped.regroupAfter(failed);
    if (regroup.length)
      await runLimited(
        runner,
        inNetns(batch.ns, ["ip", "-force", "-batch", "-"]),
        regroup.map((d) => `link set dev ${d} group default`).join("\n") + "\n",
        "ip",
        batch.ns,
        regroup.length,
        o.signal,
      );
    return { done: grouped.doneBefore(failed), error: err };
  },
});

/**
 * `tc -batch -`: one process per namespace for any number of qdisc/class/filter lines; like ip it
 * stops at the first failing line ("Command failed -:N"), and with `-force` (rollback) goes on.
 */
const tcBatch: Tool = {
  name: "tc",
  prefix: "tc ",
  processes: () => 1,
  async run(runner, batch, o) {
    const argv = inNetns(batch.ns, ["tc", ...(o.force ? ["-force"] : []), "-batch", "-"]);
    const stdin = batch.ops.map(batchLine).join("\n") + "\n";
    const r = await runLimited(runner, argv, stdin, "tc", batch.ns, batch.ops.length, o.signal);
    if (r.code === 0) return { done: batch.ops.length };
    const m = /Command failed -:(\d+)/.exec(r.stderr);
    const err = new CommandError(argv, r.code, r.stderr, m ? Number(m[1]) : undefined, stdin);
    if (!m || o.force) return { done: batch.ops.length, error: err };
    return { done: Math.min(Number(m[1]) - 1, batch.ops.length), error: err };
  },
};

/**
 * Peer changes batched like `wg setconf`: one `wg set IF peer … peer …` per interface, however
 * many peers change. `wg set` does not say which clause failed, so a failure counts every
 * clause as possibly applied (their undos are forced and idempotent).
 */
const wgSet: Tool = {
  name: "wg",
  prefix: "wg set ",
  processes: (b) => new Set(b.ops.map((o) => o.args[0])).size,
  async run(runner, batch, o) {
    const byIf = new Map<string, string[]>();
    for (const op of batch.ops) byIf.set(op.args[0]!, [...(byIf.get(op.args[0]!) ?? []), ...op.args.slice(1)]);
    let firstError: CommandError | undefined;
    for (const [ifname, clauses] of byIf) {
      const argv = inNetns(batch.ns, ["wg", "set", ifname, ...clauses]);
      const r = await runLimited(runner, argv, undefined, "wg set", batch.ns, 1, o.signal);
      if (r.code !== 0) {
        firstError ??= new CommandError(argv, r.code, r.stderr);
        if (!o.force) return { done: batch.ops.length, error: firstError };
      }
    }
    return { done: batch.ops.length, error: firstError };
  },
};

/** One process per op, in order; the first failure ends the batch unless forced. */
const plainExec: Tool = {
  name: "exec",
  prefix: "",
  processes: (b) => b.ops.length,
  async run(runner, batch, o) {
    let done = 0;
    let firstError: CommandError | undefined;
    for (const op of batch.ops) {
      const argv = inNetns(batch.ns, op.args);
      const r = await runLimited(runner, argv, op.stdin, toolName(op.args), batch.ns, 1, o.signal);
      if (r.code !== 0) {
        firstError ??= new CommandError(argv, r.code, r.stderr, done + 1);
        if (!o.force) return { done, error: firstError };
      }
      done++;
    }
    return { done, error: firstError };
  },
};

/**
 * A target's private /var/run/wireguard (wg-runtime.ts): `ensure` before its first WireGuard
 * device, `release` after its last. Both are idempotent, so a batch runs each at most once.
 */
const wgRuntime: Tool = {
  name: "wgrt",
  prefix: "wireguard runtime ",
  processes: (b) => (b.ns === null ? 0 : new Set(b.ops.map((o) => o.args[0])).size * 2),
  async run(runner, batch, o) {
    if (batch.ns === null) return { done: batch.ops.length };
    let done = 0;
    let error: CommandError | undefined;
    const ran = new Map<string, CommandError | undefined>();
    for (const op of batch.ops) {
      const what = op.args[0]!;
      if (!ran.has(what)) ran.set(what, await (what === "ensure" ? ensureRuntime : releaseRuntime)(runner, batch.ns, o.signal));
      const e = ran.get(what);
      if (e) {
        error ??= e;
        if (!o.force) return { done, error };
      }
      done++;
    }
    return { done, error };
  },
};

/** Whole files bolt owns (files-tool.ts): any number of writes and removals in one process. */
const filesTool: Tool = {
  name: "files",
  prefix: "file ",
  processes: () => 1,
  run: (runner, batch, o) => runFilesBatch(batch, o, (argv, stdin) => runLimited(runner, argv, stdin, "bolt-files", batch.ns, batch.ops.length, o.signal)),
};

export const TOOLS: Record<string, Tool> = {
  ip: ipBatchTool(false),
  ip6: ipBatchTool(true),
  tc: tcBatch,
  wg: wgSet,
  exec: plainExec,
  wgrt: wgRuntime,
  files: filesTool,
};

export function toolOf(name: string): Tool {
  const t = TOOLS[name];
  if (!t) throw new Error(`internal: no tool "${name}" in the tool registry (exec/tools.ts)`);
  return t;
}

export function runBatch(runner: CommandRunner, batch: Batch, o: ToolRunOptions = {}): Promise<BatchResult> {
  return toolOf(batch.tool).run(runner, batch, o);
}

/** Run async tasks with at most `limit` in flight, keeping result order. */
export async function pool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
