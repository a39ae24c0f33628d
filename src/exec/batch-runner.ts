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
}

/**
 * Runs one batch. `ip -batch` stops at the first failing line and reports it as
 * "Command failed -:N", so lines 1..N-1 took effect. With `force` (rollback) it goes on.
 */
export async function runBatch(runner: CommandRunner, batch: Batch<OpLine>, force = false): Promise<BatchResult> {
  if (batch.tool === "ip") {
    const argv = inNetns(batch.ns, ["ip", ...(force ? ["-force"] : []), "-batch", "-"]);
    const stdin = batch.ops.map(batchLine).join("\n") + "\n";
    const r = await runner.run(argv, stdin);
    if (r.code === 0) return { done: batch.ops.length };
    const m = /Command failed -:(\d+)/.exec(r.stderr);
    const failed = m ? Number(m[1]) : undefined;
    const err = new CommandError(argv, r.code, r.stderr, failed, stdin);
    // Unknown failure point: assume everything may have happened (undo is forced and idempotent).
    return { done: failed !== undefined && !force ? failed - 1 : batch.ops.length, error: err };
  }
  let done = 0;
  let firstError: CommandError | undefined;
  for (const op of batch.ops) {
    const argv = inNetns(batch.ns, op.args);
    const r = await runner.run(argv);
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
