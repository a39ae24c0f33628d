import { BoltError } from "./diagnostics.js";
import type { Diagnostic } from "./diagnostics.js";
import { diffResources } from "./diff.js";
import { keyName } from "./ownership.js";
import { LiveReader } from "./live-reader.js";
import type { Change, Op, PlanContext, ReadContext, Resource } from "./resource.js";
import { emptyIntent, intentFor } from "./intent.js";
import type { Intent } from "./intent.js";
import type { Registry } from "./registry.js";
import type { CommandRunner, Ns } from "../exec/runner.js";
import type { PlanMemo } from "./plan-memo.js";
import { createHash } from "node:crypto";
import { stringifyBig } from "./json-bigint.js";

export interface PlanInput {
  /** a reader whose reads were started early (memoized answers are shared) */
  reader?: LiveReader;
  intent: Intent;
  runner: CommandRunner;
  target: Ns;
  registry: Registry;
  leases: Map<string, string>;
  originals: Map<string, string>;
  /** destroy: plan the removal of everything bolt owns in the target */
  destroy?: boolean;
  deep?: boolean;
  /** live state read elsewhere (an exported host state: `plan --state`); skips the kernel read */
  snapshot?: LiveSnapshot;
  /** plan towards these recorded resources (a revision, a saved plan) instead of deriving them from the intent */
  desired?: Resource[];
  /**
   * kernel keys an interrupted apply's journal says it created: held by an object without bolt's
   * mark, such a key is that apply's leftover (the next apply's recovery removes it), not a conflict
   */
  halfMade?: Set<string>;
  /**
   * the daemon's memo of its last no-op plan, and its clock when this plan's first read began
   * (core/plan-memo.ts); `intentKey`: a digest standing for the intent (which is rebuilt every pass)
   */
  memo?: { memo: PlanMemo; started: number | undefined; intentKey?: string };
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
  /** host facts the reads learned (ReadResult.facts) */
  facts: Map<string, string>;
  diagnostics: Diagnostic[];
  reader: LiveReader;
}

export async function readLive(
  runner: CommandRunner,
  target: Ns,
  registry: Registry,
  ctx: ReadContext,
  primed?: Map<string, unknown[]>,
  reader = new LiveReader(runner, target, primed),
): Promise<LiveSnapshot> {
  const [results, nsList] = await Promise.all([
    Promise.all(registry.kinds.map((r) => r.read(reader, ctx))),
    reader.ipJson<{ name: string }[]>(["netns", "list"], null),
  ]);
  const live = new Map<string, Resource>();
  const foreign = new Map<string, string>();
  const diagnostics: Diagnostic[] = [];
  const facts = new Map<string, string>();
  for (const res of results) {
    for (const r of res.resources) live.set(r.id, r);
    for (const [k, v] of res.foreign) foreign.set(k, v);
    for (const [k, v] of Object.entries(res.facts ?? {})) facts.set(k, v);
    diagnostics.push(...(res.diagnostics ?? []));
  }
  return { live, foreign, netns: new Set(nsList.map((n) => n.name)), facts, diagnostics, reader };
}

/** read → desired → conflicts → diff → ordered steps. Writes nothing. */
export async function makePlan(input: PlanInput): Promise<Plan> {
  const { registry, target } = input;
  const intent = input.destroy ? emptyIntent(input.intent.files) : input.intent;
  // Only a plain plan from the files, read through the reader the memo re-checks with.
  const memo = input.memo && input.reader && !input.snapshot && !input.desired && !input.destroy && !input.deep ? input.memo : undefined;
  const memoKey = memo?.memo.key({
    leases: input.leases,
    originals: input.originals,
    halfMade: input.halfMade,
    deep: false,
    files: registry.kinds.flatMap((k) => k.planFiles?.(target) ?? []),
  });
  const intentId = memo?.memo.intentId(memo.intentKey ?? intent);
  // What the kinds want against a live state, and what they said while deciding (a pure function of both).
  const desiredFrom = (snap: LiveSnapshot) => {
    const byKind = new Map<string, Resource[]>();
    const diagnostics: Diagnostic[] = [];
    if (input.desired && !input.destroy) for (const d of input.desired) byKind.set(d.kind, [...(byKind.get(d.kind) ?? []), d]);
    // Each kind sees the fragments and desired resources of the kinds it declared it uses, no more.
    const contextOf = (kind: string, prepared = new Map<string, Record<string, unknown>>()): PlanContext => {
      const uses = registry.byKind.get(kind)!.uses ?? [];
      return {
        target,
        intent: intentFor(intent, [kind, ...uses]),
        live: snap.live,
        leases: input.leases,
        netns: snap.netns,
        facts: snap.facts,
        desired: uses.flatMap((u) => byKind.get(u) ?? []),
        prepared,
      };
    };
    if (!input.desired) {
      for (const r of registry.desiredOrder) {
        const d = r.desired(contextOf(r.kind));
        byKind.set(r.kind, d.resources);
        diagnostics.push(...d.diagnostics);
      }
    }
    const known = new Set(registry.kinds.map((r) => r.kind));
    const desired = [...registry.kinds.flatMap((r) => byKind.get(r.kind) ?? []), ...[...byKind].filter(([k]) => !known.has(k)).flatMap(([, v]) => v)];
    return { desired, diagnostics, contextOf };
  };
  const digestOf = (d: { desired: Resource[]; diagnostics: Diagnostic[] }) =>
    createHash("sha256")
      .update(stringifyBig([d.desired, d.diagnostics]))
      .digest("hex");
  if (memo) {
    const hit = await memo.memo.lookup(memoKey!, intentId!, memo.started, input.reader!, (snap) => digestOf(desiredFrom(snap)));
    if (hit) return hit;
  }
  const snap =
    input.snapshot ??
    (await readLive(input.runner, target, registry, { deep: input.deep ?? false, intent, originals: input.originals }, undefined, input.reader));
  const made = desiredFrom(snap);
  const { desired, contextOf } = made;
  const diagnostics = [...snap.diagnostics, ...made.diagnostics];
  diagnostics.push(...collisions(desired, snap, input.halfMade));
  const conflictChecks = registry.kinds
    .filter((r) => r.conflicts)
    .map((r) =>
      r.conflicts!(
        desired.filter((d) => d.kind === r.kind),
        snap.reader,
      ),
    );
  for (const c of await Promise.all(conflictChecks)) diagnostics.push(...c);
  const changes = diffResources(desired, snap.live, registry);
  const prepared = new Map<string, Map<string, Record<string, unknown>>>();
  // Offline plans (a snapshot instead of a kernel) cannot fetch or check anything more: say so.
  if (input.snapshot) {
    for (const r of registry.kinds)
      if (r.offlineUnchecked && changes.some((c) => c.kind === r.kind && c.after))
        diagnostics.push({ severity: "warning", message: `offline plan: ${r.offlineUnchecked}` });
  } else {
    const kinds = registry.kinds.filter((r) => r.prepare && changes.some((c) => c.kind === r.kind));
    const results = await Promise.all(
      kinds.map((r) =>
        r.prepare!(
          changes.filter((c) => c.kind === r.kind),
          snap.reader,
        ),
      ),
    );
    results.forEach((res, i) => {
      diagnostics.push(...res.diagnostics);
      if (res.prepared) prepared.set(kinds[i]!.kind, res.prepared);
    });
  }
  const steps = renderSteps(changes, (kind) => contextOf(kind, prepared.get(kind)), registry);
  // Every object this apply creates or changes is read deeply by verify (kinds that have
  // nothing deeper to read ignore it).
  const touched = changes.filter((c) => c.action !== "delete").map((c) => c.id);
  const readBack = new Map<string, string[]>();
  for (const c of changes) for (const rb of registry.byKind.get(c.kind)!.readBack?.(c) ?? []) readBack.set(rb.ns, rb.lines);
  const plan: Plan = { target, changes, steps, diagnostics, desired, before: [...snap.live.values()], touched, readBack };
  if (memo) memo.memo.store(memoKey!, intentId!, memo.started, snap, plan, () => digestOf(made));
  return plan;
}

/** A desired object may not take a kernel name held by an object bolt does not own. */
/** Where the config names a kernel identity: the field whose value is the key's name (a bridge, a host interface), else the object. */
function keySource(d: Resource, key: string): Resource["source"] {
  const name = key.slice(key.indexOf(":") + 1);
  const field = Object.keys(d.spec).find((f) => d.spec[f] === name && d.fieldSources?.[f]);
  return (field ? d.fieldSources![field] : undefined) ?? d.source;
}

function collisions(desired: Resource[], snap: LiveSnapshot, halfMade = new Set<string>()): Diagnostic[] {
  const out: Diagnostic[] = [];
  const claimed = new Map<string, string>();
  for (const d of desired) {
    for (const k of d.keys) {
      const f = snap.foreign.get(k);
      if (f && halfMade.has(k))
        out.push({
          severity: "warning",
          message: `${d.kind} "${d.name}": ${keyName(k)} was left by the interrupted apply, without bolt's mark: the next \`bolt apply\` (or \`bolt rollback\`) removes it first, then this plan creates it`,
          source: keySource(d, k),
        });
      else if (f)
        out.push({
          severity: "error",
          message: `${d.kind} "${d.name}": ${keyName(k)} already exists (${f}, not created by bolt); bolt will not take it over`,
          source: keySource(d, k),
          hint: "choose another name or remove that object",
        });
      const other = claimed.get(k);
      if (other) out.push({ severity: "error", message: `${d.kind} "${d.name}": ${k} is also wanted by ${other}`, source: d.source });
      claimed.set(k, `${d.kind} "${d.name}"`);
    }
  }
  return out;
}

/** Each change's ops, in phase order; a replace becomes the delete of the old object plus the create of the new. */
export function renderSteps(changes: Change[], contextOf: (kind: string) => PlanContext, registry: Registry): Step[] {
  return changes.map((change, i) => {
    const r = registry.byKind.get(change.kind)!;
    const ctx = contextOf(change.kind);
    const ordered = (ops: ReturnType<typeof r.render>, destroy: boolean): Op[] =>
      ops.map(({ phase, ...o }) => ({ ...o, stage: registry.stage(r.kind, phase), ...((o.destroy ?? destroy) ? { destroy: true } : {}), step: i }));
    let ops: Op[];
    if (change.action === "replace") {
      const del = ordered(r.render({ ...change, action: "delete", after: undefined }, ctx), true);
      // `before` stays on the create half: a renderer may need to know what it replaces.
      ops = [...del, ...ordered(r.render({ ...change, action: "create" }, ctx), false)];
    } else {
      ops = ordered(r.render(change, ctx), change.action === "delete");
    }
    return { change, ops };
  });
}

/** "Plan: 1 to add, 0 to change, 0 to replace, 2 to destroy." */
export function summaryLine(changes: Change[]): string {
  const n = (a: Change["action"]) => changes.filter((c) => c.action === a).length;
  return `Plan: ${n("create")} to add, ${n("update")} to change, ${n("replace")} to replace, ${n("delete")} to destroy.`;
}

/**
 * A config that declares nothing (a file truncated to 0 bytes by a crashed generator, a full
 * disk, an editor mid-save) is valid, and applying it deletes everything bolt made. The same
 * for one that would delete more than half of what bolt owns, once it owns enough that a
 * truncated file is not obvious at a glance (MASS_DESTROY_MIN objects). Such a plan needs the
 * user to say so (`bolt destroy`, or --allow-destroy): returns why it is refused, or undefined.
 */
export function massDestroy(plan: Plan): string | undefined {
  const owned = plan.before.filter((r) => r.owned).length;
  const deletes = plan.changes.filter((c) => c.action === "delete").length;
  if (!deletes) return undefined;
  const where = plan.target === null ? "the host namespace" : `netns ${plan.target}`;
  if (!plan.desired.length)
    return `the configuration declares nothing (an empty or truncated file?): applying it would delete all ${deletes} object(s) bolt owns in ${where}`;
  if (owned >= MASS_DESTROY_MIN && deletes * 2 > owned) return `applying this would delete ${deletes} of the ${owned} objects bolt owns in ${where}`;
  return undefined;
}

export const MASS_DESTROY_MIN = 10;

export const MASS_DESTROY_HINT = "if that is what you want, run `bolt destroy`, or apply with --allow-destroy";

/** Refused because it would delete most of what bolt owns (see massDestroy). */
export class MassDestroyError extends BoltError {
  constructor(reason: string) {
    super(`refusing to apply: ${reason}; nothing was changed (${MASS_DESTROY_HINT})`);
    this.name = "MassDestroyError";
  }
}
