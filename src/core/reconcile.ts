import type { Logger } from "pino";
import { applyPlan } from "./apply.js";
import type { ApplyOptions, ApplyResult } from "./apply.js";
import { BoltError, renderDiagnostics } from "./diagnostics.js";
import type { Diagnostic } from "./diagnostics.js";
import { emptyIntent } from "./intent.js";
import type { Intent } from "./intent.js";
import { MassDestroyError, makePlan, massDestroy, summaryLine } from "./plan.js";
import type { Plan, PlanInput } from "./plan.js";
import { LiveReader } from "./live-reader.js";
import { recoverJournal } from "./recover.js";
import type { Recovery } from "./recover.js";
import type { Registry } from "./registry.js";
import type { Resource } from "./resource.js";
import { encodeRevision, headRevision, pendingRevisions } from "./revisions.js";
import type { CommandRunner, Ns } from "../exec/runner.js";
import type { StateStore } from "../state/store.js";

/** Commit-confirmed: the apply is recorded as pending and a timer outside this process restores `previous`. */
export interface ConfirmOptions {
  timeoutMs: number;
  /** starts the timer for a pending revision; returns what to record ("pid:N", "unit:NAME") */
  arm(revision: number): string;
}

export interface ReconcileOptions {
  runner: CommandRunner;
  registry: Registry;
  target: Ns;
  store: StateStore;
  intent: Intent;
  /** config warnings so far (foreign-firewall findings are added here) */
  warnings: Diagnostic[];
  /** history label: apply, destroy, watch, rollback --to 3 … */
  command: string;
  log: Logger;
  destroy?: boolean;
  deep?: boolean;
  /** plan towards these recorded resources (revision, saved plan) */
  desired?: Resource[];
  /** foreign-firewall findings for the plan's warnings (commands.ts) */
  extraWarnings?: () => Promise<Diagnostic[]>;
  /** sees the plan before anything is written; may throw to stop (a stale saved plan) */
  onPlan?: (plan: Plan, diags: Diagnostic[]) => void | Promise<void>;
  confirm?: ConfirmOptions;
  /** apply even when the plan deletes most of what bolt owns (see massDestroy) */
  allowDestroy?: boolean;
  /** stops the writes; the apply rolls back */
  signal?: AbortSignal;
  /** the daemon: after undoing an interrupted apply, converge even if the kernel no longer matches its "before" */
  convergeAfterRecovery?: boolean;
  /** the apply's progress (see ApplyOptions.progress) */
  progress?: ApplyOptions["progress"];
  /** the daemon's memo of its last no-op pass (a pass that changes nothing reads only what no event covers) */
  memo?: NonNullable<PlanInput["memo"]>;
}

export interface ReconcileResult {
  plan: Plan;
  diags: Diagnostic[];
  recovered?: Recovery;
  result?: ApplyResult;
  revision?: number;
}

/**
 * One reconcile of a target, the path `bolt apply`, the daemon and rollbacks share. The caller
 * holds the target lock. Repairs an interrupted apply first, plans, applies (journal, verify,
 * rollback on failure), then commits the bookkeeping and a revision in one transaction.
 */
export async function reconcile(o: ReconcileOptions): Promise<ReconcileResult> {
  const { store, runner, target: t } = o;
  const recovered = await recoverJournal(store, runner, o.registry, t);
  if (recovered) {
    if (recovered.problems.length && !o.convergeAfterRecovery)
      throw new BoltError(`an interrupted apply (pid ${recovered.pid}, ${recovered.startedAt}) could not be rolled back: ${recovered.problems.join("; ")}`);
    if (recovered.problems.length) {
      // The undo ran; the kernel differs from the journal's "before" because someone else changed
      // it meanwhile. A level-triggered caller plans from what is there now, so the journal has
      // served its purpose: drop it rather than refuse every pass from now on.
      store.clearJournal(t);
      o.log.warn(
        { pid: recovered.pid, startedAt: recovered.startedAt, problems: recovered.problems },
        "an interrupted apply was undone, but the kernel also changed meanwhile; converging from the current state",
      );
    } else o.log.warn({ pid: recovered.pid, startedAt: recovered.startedAt, undone: recovered.undone }, "rolled back an interrupted apply before continuing");
  }
  const originals = store.originals(t);
  const warnings = [...o.warnings, ...((await o.extraWarnings?.()) ?? [])];
  const plan = await makePlan({
    intent: o.intent,
    runner,
    target: t,
    registry: o.registry,
    leases: store.leases(t),
    originals,
    destroy: o.destroy,
    deep: o.deep,
    desired: o.desired,
    ...(o.memo ? { memo: o.memo, reader: new LiveReader(runner, t) } : {}),
  });
  const diags = [...warnings, ...plan.diagnostics];
  if (diags.some((d) => d.severity === "error")) throw new BoltError(renderDiagnostics(diags.filter((d) => d.severity === "error")), diags);
  // A plan made from the files (not a reviewed saved plan, a revision or `destroy`) that would
  // delete most of what bolt owns is refused before anything is shown as going to happen.
  const refused = !o.destroy && !o.desired && !o.allowDestroy ? massDestroy(plan) : undefined;
  if (refused) throw new MassDestroyError(refused);
  await o.onPlan?.(plan, diags);
  if (!plan.changes.length) return { plan, diags, recovered };
  const intent = o.destroy ? emptyIntent(o.intent.files) : o.intent;
  const blob = encodeRevision(plan.desired, intent);
  let pending: number | undefined;
  if (o.confirm) {
    // Recorded (and the timer armed) before the first write: if this process dies mid-apply the
    // timer still fires, its rollback replays the journal and then restores `previous`.
    const previous = headRevision(store, t)?.id ?? 0;
    for (const p of pendingRevisions(store, t)) store.transitionRevision(p.id, "pending", "superseded");
    pending = store.addRevision({
      target: t,
      command: o.command,
      summary: summaryLine(plan.changes),
      ...blob,
      status: "pending",
      previous,
      confirmBy: new Date(Date.now() + o.confirm.timeoutMs).toISOString(),
    });
    store.updateRevision(pending, { timer: o.confirm.arm(pending) });
  }
  let result: ApplyResult;
  try {
    result = await applyPlan(plan, {
      runner,
      registry: o.registry,
      journal: store,
      intent: o.intent,
      originals,
      signal: o.signal,
      log: (event, fields) => o.log.info(fields, event),
      progress: o.progress,
    });
  } catch (e) {
    if (pending !== undefined) store.updateRevision(pending, { status: "failed" });
    throw e;
  }
  const rec = o.registry.byKind;
  let revision = pending;
  store.transaction(() => {
    for (const c of plan.changes) rec.get(c.kind)!.commit?.(c, store, plan.target);
    store.addHistory(plan.target, o.command, summaryLine(plan.changes), "applied");
    if (pending !== undefined) {
      // The confirmation window starts when the new state is in place.
      store.updateRevision(pending, { confirm_by: new Date(Date.now() + o.confirm!.timeoutMs).toISOString() });
    } else {
      // A plain apply on top of a pending one confirms it (as a second `commit` does on a router).
      for (const p of pendingRevisions(store, t)) store.transitionRevision(p.id, "pending", "confirmed");
      revision = store.addRevision({ target: t, command: o.command, summary: summaryLine(plan.changes), ...blob, status: "applied" });
    }
  });
  o.log.info({ changes: result.applied, ops: result.ops, processes: result.processes, ms: Math.round(result.durationMs), revision }, "apply.done");
  return { plan, diags, recovered, result, revision };
}
