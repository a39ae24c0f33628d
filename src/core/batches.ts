import type { Op, OpLine } from "./resource.js";
import type { Batch as ToolBatch } from "../exec/command.js";

/** A batch of planned ops (the exec layer's batch, of ops that carry their undo and step). */
export type Batch<T extends OpLine = Op> = ToolBatch<T>;

/**
 * Turns ordered ops into waves of batches. A batch is ops for one tool in one namespace
 * (one `ip -batch -` process, or a chain of exec'd commands); batches within a wave touch
 * different namespaces and run concurrently; waves run in order. Destroy ops come first,
 * highest stage first; then build ops, lowest stage first; plan order is kept within a batch.
 *
 * A step's ops are its kind's ordered list even inside one stage: an op for another tool or
 * namespace than the step's previous op goes to a later wave of that stage (dhcp's restart is
 * a pkill and a wait on the host, then the new dnsmasq in the target; run side by side, the old
 * daemon's exit unlinked the new one's pid file). Ops of different steps still share batches:
 * every endpoint's host-side lines are one batch, then every namespace's inside lines.
 */
export function planWaves(ops: Op[]): Batch[][] {
  const indexed = ops.map((op, i) => ({ op, i }));
  const destroy = indexed.filter((x) => x.op.destroy).sort((a, b) => b.op.stage - a.op.stage || (a.op.step ?? 0) - (b.op.step ?? 0) || a.i - b.i);
  const build = indexed.filter((x) => !x.op.destroy).sort((a, b) => a.op.stage - b.op.stage || (a.op.step ?? 0) - (b.op.step ?? 0) || a.i - b.i);
  const waves: Batch[][] = [];
  for (const phase of [destroy, build]) {
    let stage: number | undefined;
    // the stage's waves, and where each step's last op went
    let levels: Map<string, Batch>[] = [];
    let last = new Map<number, { level: number; key: string }>();
    const flush = () => {
      for (const w of levels) waves.push([...w.values()]);
      levels = [];
      last = new Map();
    };
    for (const { op } of phase) {
      if (op.stage !== stage) {
        flush();
        stage = op.stage;
      }
      const key = `${op.tool}\0${op.ns ?? ""}`;
      const prev = op.step === undefined ? undefined : last.get(op.step);
      const level = !prev ? 0 : prev.key === key ? prev.level : prev.level + 1;
      if (op.step !== undefined) last.set(op.step, { level, key });
      while (levels.length <= level) levels.push(new Map());
      const wave = levels[level]!;
      let b = wave.get(key);
      if (!b) wave.set(key, (b = { tool: op.tool, ns: op.ns, ops: [] }));
      b.ops.push(op);
    }
    flush();
  }
  return waves;
}

/** Consecutive lines with the same tool and namespace share a batch; order is kept exactly. */
export function sequentialBatches(lines: OpLine[]): Batch<OpLine>[] {
  const out: Batch<OpLine>[] = [];
  for (const l of lines) {
    const last = out[out.length - 1];
    if (last && last.tool === l.tool && last.ns === l.ns) last.ops.push(l);
    else out.push({ tool: l.tool, ns: l.ns, ops: [l] });
  }
  return out;
}
