import { BoltError, type CommandError } from "./diagnostics.js";
import { planWaves, sequentialBatches } from "./batches.js";
import type { Batch } from "./batches.js";
import { changedFields, diffResources, specDigest } from "./diff.js";
import { readLive } from "./plan.js";
import { batchKey } from "./live-reader.js";
import { keyName } from "./ownership.js";
import type { Plan } from "./plan.js";
import type { Change, CommitStore, Op, OpLine, Resource } from "./resource.js";
import type { Intent } from "./intent.js";
import { emptyIntent } from "./intent.js";
import type { Registry } from "./registry.js";
import { pool, runBatch, toolOf } from "../exec/tools.js";
import type { CommandRunner, Ns } from "../exec/runner.js";

/** Where apply keeps its journal; the state store implements it. */
export interface JournalSink {
  writeJournal(target: Ns, payload: string): void;
  clearJournal(target: Ns): void;
}

export interface ApplyOptions {
  runner: CommandRunner;
  registry: Registry;
  journal: JournalSink;
  intent: Intent;
  /** sysctl originals as the store has them before this apply */
  originals: Map<string, string>;
  concurrency?: number;
  verifyAttempts?: number;
  /** stops the writes (the running tool is killed); the apply then rolls back */
  signal?: AbortSignal;
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** told when each wave ends and when verify or rollback starts (progress on a TTY, JSON events) */
  progress?: (e: ApplyProgress) => void;
}

/** Where a running apply is: waves and ops done of the total, and the phase it is in. */
export interface ApplyProgress {
  phase: "apply" | "verify" | "rollback" | "done";
  wave: number;
  waves: number;
  opsDone: number;
  ops: number;
  /** steps (resources) whose every op has run */
  stepsDone: number;
  steps: number;
  elapsedMs: number;
}

export interface JournalPayload {
  version: 1;
  /**
   * what the objects the apply could touch were before it: the changed ones and every desired
   * one depending on a changed one (all objects read, in journals without `kinds`)
   */
  before: Resource[];
  /** the kinds of those objects (verifiedKinds); recovery reads these kinds only */
  kinds?: string[];
  /**
   * every other object of those kinds there was before, id → specDigest: one missing or differing
   * afterwards is reported, an owned one not listed was left behind
   */
  present?: Record<string, string>;
  /** every op that may have started, in start order, with its undo */
  started: { args: string[]; tool: OpLine["tool"]; ns: Ns; stdin?: string; undo: OpLine[] }[];
  /** read context to verify the rollback with */
  originals: [string, string][];
  /**
   * kernel keys (`link:NAME`) of the objects the started ops create: one made by a batch that
   * stopped before the line giving it bolt's mark reads as foreign, and is still this apply's
   */
  creates?: string[];
}

export class ApplyError extends BoltError {
  constructor(
    message: string,
    readonly rolledBack: boolean,
    readonly rollbackProblems: string[],
  ) {
    super(message);
    this.name = "ApplyError";
  }
}

export interface ApplyResult {
  applied: number;
  ops: number;
  processes: number;
  durationMs: number;
}

/**
 * Runs the plan's ops in waves of batches, journaling before each wave; verifies by reading
 * the kernel again; on any failure runs the undo of every op that took effect, in reverse,
 * and checks that the kernel is back to the state read before planning.
 */
export async function applyPlan(plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const ops = plan.steps.flatMap((s) => s.ops);
  const waves = planWaves(ops);
  const done: Op[] = [];
  const started: Op[] = [];
  let processes = 0;
  // The journal's "before" is the same in each wave's: serialized once, and only of what this
  // apply can touch (attaching one endpoint among a thousand networks journals that endpoint and
  // the names of the others, not every network, route and rule no op writes).
  let beforeJson: string | undefined;
  const journal = () => opts.journal.writeJournal(plan.target, journalText(plan, (beforeJson ??= journaledBefore(plan)), started, opts.originals));
  // Read back inside a namespace in the process that last writes to it.
  const lastWave = new Map<string, number>();
  const readsBack = (b: Batch) => !!toolOf(b.tool).readsBack && b.ns !== null;
  waves.forEach((w, i) => w.forEach((b) => readsBack(b) && lastWave.set(b.ns!, i)));
  const primed = new Map<string, unknown[]>();
  const opsOfStep = new Map<number, number>();
  for (const o of ops) if (o.step !== undefined) opsOfStep.set(o.step, (opsOfStep.get(o.step) ?? 0) + 1);
  const report = (phase: ApplyProgress["phase"], wave: number) => {
    if (!opts.progress) return;
    const byStep = new Map<number, number>();
    for (const o of done) if (o.step !== undefined) byStep.set(o.step, (byStep.get(o.step) ?? 0) + 1);
    const stepsDone = [...byStep].filter(([st, n]) => n === opsOfStep.get(st)).length;
    opts.progress({
      phase,
      wave,
      waves: waves.length,
      opsDone: done.length,
      ops: ops.length,
      stepsDone,
      steps: plan.steps.length,
      elapsedMs: performance.now() - t0,
    });
  };

  for (const [waveNo, wave] of waves.entries()) {
    started.push(...wave.flatMap((b) => b.ops));
    try {
      journal();
    } catch (e) {
      // The journal is on disk before its wave, or the wave does not start (disk full, store
      // gone read-only): what earlier waves did is undone like any other failure.
      started.splice(started.length - wave.reduce((n, b) => n + b.ops.length, 0));
      const why = (e as Error)?.message ?? String(e);
      log("apply.failed", { step: `journal before wave ${waveNo + 1}`, error: why });
      const problems = done.length ? await rollback(done, plan, opts) : [];
      throw new ApplyError(
        `apply stopped before wave ${waveNo + 1}/${waves.length}: the journal could not be written (${why.split("\n")[0]})${done.length ? rollbackSummary(problems) : "; nothing was changed"}`,
        true,
        problems,
      );
    }
    const readBackOf = (b: Batch) => (readsBack(b) && lastWave.get(b.ns!) === waveNo ? (plan.readBack.get(b.ns!) ?? []) : []);
    const results = await pool(wave, opts.concurrency ?? 8, (b) => runBatch(opts.runner, b, { readBack: readBackOf(b), signal: opts.signal }));
    wave.forEach((b, i) => {
      const reads = results[i]!.reads;
      if (reads) primed.set(batchKey(b.ns, readBackOf(b)), reads);
    });
    processes += wave.reduce((n, b) => n + toolOf(b.tool).processes(b), 0);
    let failure: { batch: Batch; error: CommandError } | undefined;
    wave.forEach((b, i) => {
      const r = results[i]!;
      done.push(...b.ops.slice(0, r.done));
      if (r.error && !failure) failure = { batch: b, error: r.error };
    });
    report("apply", waveNo + 1);
    if (failure) {
      const failedOp = failure.batch.ops[results[wave.indexOf(failure.batch)]!.done];
      const step = failedOp?.step !== undefined ? plan.steps[failedOp.step] : undefined;
      // A tool that died or hung without saying where (a timeout): name the steps its batch held.
      const held = [...new Set(failure.batch.ops.map((o) => o.step).filter((s): s is number => s !== undefined))];
      const what = step
        ? `step ${failedOp!.step! + 1}/${plan.steps.length} (${describeChange(step.change)})`
        : held.length
          ? `${held.length === 1 ? "step" : "steps"} ${held.map((s) => `${s + 1}`).join(", ")}/${plan.steps.length} (${held.map((s) => describeChange(plan.steps[s]!.change)).join(", ")})`
          : "a step";
      const detail = failedOp
        ? `"${failedOp.args.join(" ")}"`
        : `${toolOf(failure.batch.tool).prefix.trim() || failure.batch.ops[0]?.args[0] || failure.batch.tool} batch of ${failure.batch.ops.length} line(s)`;
      log("apply.failed", { step: what, op: detail, stderr: failure.error.stderr.trim() });
      report("rollback", waveNo + 1);
      const problems = await rollback(done, plan, opts);
      throw new ApplyError(`apply failed at ${what}: ${detail}: ${firstLine(failure.error.stderr)}${rollbackSummary(problems)}`, true, problems);
    }
  }

  report("verify", waves.length);
  const leftover = await verify(plan, opts, primed);
  if (leftover.length) {
    report("rollback", waves.length);
    const problems = await rollback(done, plan, opts);
    throw new ApplyError(`apply did not converge: the kernel still differs after apply: ${leftover.join("; ")}${rollbackSummary(problems)}`, true, problems);
  }
  opts.journal.clearJournal(plan.target);
  report("done", waves.length);
  return { applied: plan.changes.length, ops: ops.length, processes, durationMs: performance.now() - t0 };
}

/** The JournalPayload's `before`, `kinds` and `present`, serialized (the rest changes with each wave). */
function journaledBefore(plan: Plan): string {
  const { kinds, ids } = verifiedScope(plan);
  const inScope = plan.before.filter((b) => kinds.has(b.kind));
  const before = inScope.filter((b) => ids.has(b.id));
  const present = Object.fromEntries(inScope.filter((b) => !ids.has(b.id)).map((b) => [b.id, specDigest(b.spec)]));
  return `${JSON.stringify(before)},"kinds":${JSON.stringify([...kinds].sort())},"present":${JSON.stringify(present)}`;
}

/** The JournalPayload as JSON, with `before` (and its scope) already serialized. */
function journalText(plan: Plan, beforeJson: string, started: Op[], originals: Map<string, string>): string {
  const rest: Omit<JournalPayload, "version" | "before" | "kinds" | "present"> = {
    started: started.map((o) => ({ tool: o.tool, ns: o.ns, args: o.args, stdin: o.stdin, undo: o.undo })),
    originals: [...originals],
    creates: createdKeys(plan, started),
  };
  return `{"version":1,"before":${beforeJson},${JSON.stringify(rest).slice(1)}`;
}

/** The kernel keys of the objects that create (or replace) changes with an op among `ops` make. */
function createdKeys(plan: Plan, ops: Op[]): string[] {
  const steps = new Set(ops.map((o) => o.step).filter((s): s is number => s !== undefined));
  return [...steps].flatMap((s) => {
    const c = plan.steps[s]!.change;
    return c.action === "create" || c.action === "replace" ? (c.after?.keys ?? []) : [];
  });
}

/** Re-read and re-diff until empty (the kernel may need a moment to settle), or report what is left. */
async function verify(plan: Plan, opts: ApplyOptions, primed: Map<string, unknown[]>): Promise<string[]> {
  // Some ownership lives in the store (a sysctl's value from before bolt), committed only
  // after verify: read with what this apply's commits are about to record.
  const originals = new Map(opts.originals);
  const overlay: CommitStore = {
    setLease: () => {},
    releaseLease: () => {},
    setOriginal: (_t, key, value) => void originals.set(key, value),
    dropOriginal: (_t, key) => void originals.delete(key),
  };
  for (const c of plan.changes) opts.registry.byKind.get(c.kind)?.commit?.(c, overlay, plan.target);
  const attempts = opts.verifyAttempts ?? 4;
  // Only the kinds this apply changed, and the kinds of objects that depend on a changed one
  // (an endpoint on a replaced bridge), are read again: a kind whose desired objects all matched
  // before, that no op wrote and that depends on nothing written is not re-read (at a thousand
  // networks, reading every kind is most of a small apply).
  // Of those kinds, only the objects in that scope are compared, and kinds that can read just
  // them do (ReadContext.only): verify re-reads what the apply touched.
  const { kinds: changed, ids } = verifiedScope(plan);
  const scope = { ...opts.registry, kinds: opts.registry.kinds.filter((r) => changed.has(r.kind)) };
  const desired = plan.desired.filter((d) => ids.has(d.id));
  const only = [...desired, ...plan.changes.flatMap((c) => (c.before ? [c.before] : []))];
  let leftover: Change[] = [];
  for (let i = 0; i < attempts; i++) {
    if (i) await new Promise((r) => setTimeout(r, 100 * 2 ** (i - 1)));
    // First attempt uses what the write batches read back; retries read everything afresh.
    const snap = await readLive(
      opts.runner,
      plan.target,
      scope,
      { deep: new Set(plan.touched), intent: opts.intent, originals, only },
      i === 0 ? primed : undefined,
    );
    leftover = diffResources(desired, new Map([...snap.live].filter(([id]) => ids.has(id))), opts.registry);
    if (!leftover.length) return [];
    // The kernel had not settled (or the write did not take): said, so that slow applies can be told apart.
    opts.log?.("apply.verify.again", { attempt: i + 1, differs: leftover.map((c) => `${c.id}${c.changed.length ? ` (${c.changed.join(", ")})` : ""}`) });
  }
  return leftover.map(
    (c) =>
      `${describeChange(c)}${c.changed.length ? ` (${c.changed.map((f) => `${f}: want ${c.after?.spec[f] ?? "-"}, have ${c.before?.spec[f] ?? "-"}`).join(", ")})` : ""}`,
  );
}

/** The kinds of the changed objects and of every desired object that depends on one, transitively. */
export function verifiedKinds(plan: Pick<Plan, "changes" | "desired">): Set<string> {
  return verifiedScope(plan).kinds;
}

/** The changed objects and every desired object that depends on one, transitively: their ids and kinds. */
export function verifiedScope(plan: Pick<Plan, "changes" | "desired">): { kinds: Set<string>; ids: Set<string> } {
  const ids = new Set(plan.changes.map((c) => c.id));
  const kinds = new Set(plan.changes.map((c) => c.kind));
  for (let grew = true; grew; ) {
    grew = false;
    for (const d of plan.desired)
      if (!ids.has(d.id) && d.deps.some((x) => ids.has(x))) {
        ids.add(d.id);
        kinds.add(d.kind);
        grew = true;
      }
  }
  return { kinds, ids };
}

/** Undo every op that took effect, newest first, batched; then compare with the state before. */
async function rollback(done: Op[], plan: Plan, opts: ApplyOptions): Promise<string[]> {
  const log = opts.log ?? (() => {});
  log("rollback.start", { ops: done.length });
  const undoErrors = await runUndo(
    opts.runner,
    [...done].reverse().flatMap((o) => o.undo),
  );
  // The kernel itself decides whether the rollback worked; failed undo lines are context.
  const left = await compareWithBefore(plan.before, plan.target, opts.runner, opts.registry, opts.originals, createdKeys(plan, done));
  const problems = left.length ? [...left, ...undoErrors] : [];
  if (!problems.length) {
    try {
      opts.journal.clearJournal(plan.target);
    } catch {
      /* a store that broke mid-apply: the kernel is as it was; a stale journal is undone again harmlessly */
    }
  }
  log("rollback.done", { problems });
  return problems;
}

/**
 * Forced: an undo line that fails (already undone) does not stop the others. Every line is
 * tried exactly once, in order. A batch that ends without saying where it stopped (`ip -force
 * -batch` still aborts on an argument it cannot resolve, "Device does not exist", exit 255; a
 * `wg set` never says which clause failed) is run again line by line: the lines before the
 * abort are idempotent restores, the ones after it had not run yet. Failed lines are not
 * retried later: a line that failed because its op never took effect would, once later lines
 * restored the object, undo the restore.
 */
export async function runUndo(runner: CommandRunner, lines: OpLine[]): Promise<string[]> {
  const problems: string[] = [];
  for (const b of sequentialBatches(lines)) {
    const r = await runBatch(runner, b, { force: true });
    if (!r.error) continue;
    const unknown =
      b.ops.length > 1 &&
      (((b.tool === "ip" || b.tool === "ip6") && (r.error.code === 255 || !/Command failed -:\d+/.test(r.error.stderr))) || b.tool === "wg");
    if (!unknown) {
      problems.push(`undo: ${firstLine(r.error.stderr) || r.error.message}`);
      continue;
    }
    for (const line of b.ops) {
      const one = await runBatch(runner, { tool: b.tool, ns: b.ns, ops: [line] }, { force: true });
      if (one.error) problems.push(`undo: ${firstLine(one.error.stderr) || one.error.message}`);
    }
  }
  return problems;
}

/**
 * What differs between the kernel now and the resources read before the apply. `creates`: the
 * keys of what the apply made; the plan refused any of them held by a foreign object, so one
 * read as foreign now is this apply's, left without bolt's mark (a batch stopped after its
 * `link add` and before the `alias` line, and its undo failed).
 */
export async function compareWithBefore(
  before: Resource[],
  target: Ns,
  runner: CommandRunner,
  registry: Registry,
  originals: Map<string, string>,
  creates: string[] = [],
  /** a journal's scope: the kinds it read, and the other objects of them there were (id → specDigest; `before` holds the touched ones); all when not given */
  scoped?: { kinds: ReadonlySet<string>; present: ReadonlyMap<string, string> },
): Promise<string[]> {
  const kinds = scoped?.kinds;
  const scope = kinds ? { ...registry, kinds: registry.kinds.filter((r) => kinds.has(r.kind)) } : registry;
  // Read the same objects as before, even those only read because the config named them
  // (a sysctl's value is part of what must be restored).
  const beforeIds = new Set([...before.map((b) => b.id), ...(scoped?.present.keys() ?? [])]);
  const snap = await readLive(runner, target, scope, { deep: false, intent: emptyIntent(), originals, also: beforeIds });
  const out: string[] = [];
  // Objects the apply could not touch: still there, as they were (by digest: their specs are not journaled).
  for (const [id, digest] of scoped?.present ?? []) {
    const now = snap.live.get(id);
    if (!now) out.push(`${id} is gone`);
    else if (specDigest(now.spec) !== digest) out.push(`${id} differs from before`);
  }
  for (const b of before) {
    const now = snap.live.get(b.id);
    if (!now) out.push(`${b.id} is gone`);
    else {
      const diff = changedFields(b.spec, now.spec);
      if (diff.length) out.push(`${b.id} differs in ${diff.map((f) => `${f} (was ${b.spec[f] || "-"}, now ${now.spec[f] || "-"})`).join(", ")}`);
    }
  }
  for (const now of snap.live.values()) if (now.owned && !beforeIds.has(now.id)) out.push(`${now.id} was left behind`);
  for (const k of new Set(creates)) if (snap.foreign.has(k)) out.push(`${keyName(k)} was left behind without bolt's mark`);
  return out;
}

export function describeChange(c: Change): string {
  return `${c.action} ${c.kind} "${c.name}"`;
}

function firstLine(s: string): string {
  return (
    s
      .trim()
      .split("\n")
      .filter((l) => !/^Command failed/.test(l))[0] ?? s.trim()
  );
}

function rollbackSummary(problems: string[]): string {
  return problems.length
    ? `; ROLLBACK INCOMPLETE: ${problems.join("; ")} (the journal is kept: run \`bolt rollback\`)`
    : "; rolled back, the kernel is as it was";
}
