import { CommandError } from "../core/diagnostics.js";
import type { Batch } from "../core/batches.js";
import type { OpLine } from "../core/resource.js";
import { inNetns } from "./runner.js";
import type { CommandRunner } from "./runner.js";

/** Tokens reach `ip -batch` unquoted: anything that could split or comment a line is refused. */
const SAFE_TOKEN = /^[^\s"'\\#;]+$/;

export function batchLine(op: OpLine): string {
  for (const t of op.args) if (!SAFE_TOKEN.test(t)) throw new Error(`internal: unsafe token in ip batch line: ${JSON.stringify(t)}`);
  return op.args.join(" ");
}

export interface BatchResult {
  /** how many ops of the batch are known to have taken effect */
  done: number;
  error?: CommandError;
  /** JSON answers to the read-back lines, when the batch succeeded */
  reads?: unknown[];
}

/**
 * Runs one batch. `ip -batch` stops at the first failing line and reports it as
 * "Command failed -:N", so lines 1..N-1 took effect. With `force` (rollback) it goes on.
 */
export async function runBatch(runner: CommandRunner, batch: Batch<OpLine>, force = false, readBack: string[] = []): Promise<BatchResult> {
  if (batch.tool === "ip") {
    // Read-back lines run in the same process after the writes; with -j, writes print nothing
    // and each read prints one JSON line.
    const argv = inNetns(batch.ns, ["ip", ...(readBack.length ? ["-j"] : []), ...(force ? ["-force"] : []), "-batch", "-"]);
    const stdin = [...batch.ops.map(batchLine), ...readBack].join("\n") + "\n";
    const r = await runner.run(argv, stdin);
    if (r.code === 0) {
      if (!readBack.length) return { done: batch.ops.length };
      const reads = r.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown);
      return { done: batch.ops.length, reads: reads.length === readBack.length ? reads : undefined };
    }
    const m = /Command failed -:(\d+)/.exec(r.stderr);
    const failed = m ? Number(m[1]) : undefined;
    const err = new CommandError(argv, r.code, r.stderr, failed, stdin);
    // Unknown failure point: assume everything may have happened (undo is forced and idempotent).
    // A failing read-back line (after every write) still means all writes took effect.
    const done = failed === undefined || force ? batch.ops.length : Math.min(failed - 1, batch.ops.length);
    return { done, error: failed !== undefined && failed > batch.ops.length ? undefined : err };
  }
  if (batch.tool === "wg") return runWgBatch(runner, batch, force);
  let done = 0;
  let firstError: CommandError | undefined;
  for (const op of batch.ops) {
    const argv = inNetns(batch.ns, op.args);
    const r = await runner.run(argv, op.stdin);
    if (r.code !== 0) {
      firstError ??= new CommandError(argv, r.code, r.stderr, done + 1);
      if (!force) return { done, error: firstError };
    }
    done++;
  }
  return { done, error: firstError };
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

/**
 * Peer changes batched like `wg setconf`: one `wg set IF peer … peer …` per interface, however
 * many peers change. `wg set` does not say which clause failed, so a failure counts every
 * clause as possibly applied (their undos are forced and idempotent).
 */
async function runWgBatch(runner: CommandRunner, batch: Batch<OpLine>, force: boolean): Promise<BatchResult> {
  const byIf = new Map<string, string[]>();
  for (const op of batch.ops) byIf.set(op.args[0]!, [...(byIf.get(op.args[0]!) ?? []), ...op.args.slice(1)]);
  let firstError: CommandError | undefined;
  for (const [ifname, clauses] of byIf) {
    const argv = inNetns(batch.ns, ["wg", "set", ifname, ...clauses]);
    const r = await runner.run(argv);
    if (r.code !== 0) {
      firstError ??= new CommandError(argv, r.code, r.stderr);
      if (!force) return { done: batch.ops.length, error: firstError };
    }
  }
  return { done: batch.ops.length, error: firstError };
}
