import type { Diagnostic } from "./diagnostics.js";
import { diffResources } from "./diff.js";
import { LiveReader } from "./live-reader.js";
import type { Change, Op, PlanContext, ReadContext, Reconciler, Resource } from "./resource.js";
import type { Intent } from "../config/model.js";
import type { CommandRunner, Ns } from "../exec/runner.js";

export interface PlanInput {
  /** a reader whose reads were started early (memoized answers are shared) */
  reader?: LiveReader;
  intent: Intent;
  runner: CommandRunner;
  target: Ns;
  registry: Reconciler[];
  leases: Map<string, string>;
  originals: Map<string, string>;
  /** destroy: plan the removal of everything bolt owns in the target */
  destroy?: boolean;
  deep?: boolean;
  /** live state read elsewhere (an exported host state: `plan --state`); skips the kernel read */
  snapshot?: LiveSnapshot;
  /** plan towards these recorded resources (a revision, a saved plan) instead of deriving them from the intent */
  desired?: Resource[];
}

export interface Step {
  change: Change;
  ops: Op[];
}

export interface Plan {
  target: Ns;
  changes: Change[];
  steps: Step[];
  diagnostics: Diagnostic[];
  desired: Resource[];
  /** everything read before planning (owned and adopted candidates): the rollback target */
  before: Resource[];
  /** objects whose deep state (an endpoint's inside) verify must read after apply */
  touched: string[];
  /** namespace → read lines to append to its last write batch (see Reconciler.readBack) */
  readBack: Map<string, string[]>;
}

export interface LiveSnapshot {
  live: Map<string, Resource>;
  foreign: Map<string, string>;
  netns: Set<string>;
  diagnostics: Diagnostic[];
  reader: LiveReader;
}

export async function readLive(runner: CommandRunner, target: Ns, registry: Reconciler[], ctx: ReadContext, primed?: Map<string, unknown[]>, reader = new LiveReader(runner, target, primed)): Promise<LiveSnapshot> {
  const [results, nsList] = await Promise.all([
    Promise.all(registry.map((r) => r.read(reader, ctx))),
    reader.ipJson<{ name: string }[]>(["netns", "list"], null),
  ]);
  const live = new Map<string, Resource>();
  const foreign = new Map<string, string>();
  const diagnostics: Diagnostic[] = [];
  for (const res of results) {
    for (const r of res.resources) live.set(r.id, r);
    for (const [k, v] of res.foreign) foreign.set(k, v);
    diagnostics.push(...(res.diagnostics ?? []));
  }
  return { live, foreign, netns: new Set(nsList.map((n) => n.name)), diagnostics, reader };
}

/** read → desired → conflicts → diff → ordered steps. Writes nothing. */
export async function makePlan(input: PlanInput): Promise<Plan> {
  const { registry, target } = input;
  const emptyIntent: Intent = { networks: [], endpoints: [], sysctls: [], files: input.intent.files };
  const intent = input.destroy ? emptyIntent : input.intent;
  const snap = input.snapshot ?? (await readLive(input.runner, target, registry, { deep: input.deep ?? false, intent, originals: input.originals }, undefined, input.reader));
  const desired: Resource[] = input.desired && !input.destroy ? [...input.desired] : [];
  const ctx: PlanContext = { target, intent, live: snap.live, leases: input.leases, netns: snap.netns, desired };
  const diagnostics = [...snap.diagnostics];
  for (const r of input.desired ? [] : registry) {
    const d = r.desired(ctx);
    desired.push(...d.resources);
    diagnostics.push(...d.diagnostics);
  }
  diagnostics.push(...collisions(desired, snap));
  const conflictChecks = registry.filter((r) => r.conflicts).map((r) => r.conflicts!(desired.filter((d) => d.kind === r.kind), snap.reader));
  for (const c of await Promise.all(conflictChecks)) diagnostics.push(...c);
  const changes = diffResources(desired, snap.live, registry);
  // Offline plans (a snapshot instead of a kernel) cannot fetch or check anything more.
  if (!input.snapshot) {
    const prepared = registry.filter((r) => r.prepare && changes.some((c) => c.kind === r.kind)).map((r) => r.prepare!(changes.filter((c) => c.kind === r.kind), snap.reader));
    for (const d of await Promise.all(prepared)) diagnostics.push(...d);
  }
  const steps = renderSteps(changes, ctx, registry);
  // Every object this apply creates or changes is read deeply by verify (kinds that have
  // nothing deeper to read ignore it).
  const touched = changes.filter((c) => c.action !== "delete").map((c) => c.id);
  const rec = new Map(registry.map((r) => [r.kind, r]));
  const readBack = new Map<string, string[]>();
  for (const c of changes) for (const rb of rec.get(c.kind)!.readBack?.(c) ?? []) readBack.set(rb.ns, rb.lines);
  return { target, changes, steps, diagnostics, desired, before: [...snap.live.values()], touched, readBack };
}

/** A desired object may not take a kernel name held by an object bolt does not own. */
function collisions(desired: Resource[], snap: LiveSnapshot): Diagnostic[] {
  const out: Diagnostic[] = [];
  const claimed = new Map<string, string>();
  for (const d of desired) {
    for (const k of d.keys) {
      const f = snap.foreign.get(k);
      if (f) out.push({ severity: "error", message: `${d.kind} "${d.name}": ${k.replace(/^link:/, "interface ")} already exists (${f}, not created by bolt); bolt will not take it over`, source: d.fieldSources?.bridge ?? d.fieldSources?.name ?? d.source, hint: "choose another name or remove that object" });
      const other = claimed.get(k);
      if (other) out.push({ severity: "error", message: `${d.kind} "${d.name}": ${k} is also wanted by ${other}`, source: d.source });
      claimed.set(k, `${d.kind} "${d.name}"`);
    }
  }
  return out;
}

/** Each change's ops; a replace becomes the delete of the old object plus the create of the new. */
export function renderSteps(changes: Change[], ctx: PlanContext, registry: Reconciler[]): Step[] {
  const rec = new Map(registry.map((r) => [r.kind, r]));
  return changes.map((change, i) => {
    const r = rec.get(change.kind)!;
    let ops: Op[];
    if (change.action === "replace") {
      const del = r.render({ ...change, action: "delete", after: undefined }, ctx).map((o) => ({ ...o, destroy: true }));
      // `before` stays on the create half: a renderer may need to know what it replaces.
      ops = [...del, ...r.render({ ...change, action: "create" }, ctx)];
    } else {
      ops = r.render(change, ctx).map((o) => (change.action === "delete" ? { ...o, destroy: true } : o));
    }
    return { change, ops: ops.map((o) => ({ ...o, step: i })) };
  });
}
