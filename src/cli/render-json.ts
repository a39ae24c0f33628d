import type { Diagnostic } from "../core/diagnostics.js";
import type { Plan } from "../core/plan.js";
import type { Change, Impact, Resource } from "../core/resource.js";
import { REGISTRY } from "../../reconcilers/registry.js";

/**
 * The versioned machine-readable plan (docs/plan-json.md). Bump FORMAT_VERSION's major on any
 * incompatible change; additions keep the major.
 */
export const FORMAT_VERSION = "1.0";

export type { Impact };

/** The change's action, unless its kind says it cuts live traffic ("connectivity"). */
export function impactOf(c: Change): Impact {
  return REGISTRY.byKind.get(c.kind)?.impact?.(c) ?? c.action;
}

function spec(r: Resource | undefined): Record<string, string> | null {
  if (!r) return null;
  const out = { ...r.spec };
  // An empty value (no preshared key) hides nothing: it stays "".
  for (const k of r.sensitive ?? []) if (out[k]) out[k] = "(sensitive)";
  return out;
}

export function planJson(plan: Plan, diagnostics: Diagnostic[]) {
  const count = (a: Change["action"]) => plan.changes.filter((c) => c.action === a).length;
  return {
    format_version: FORMAT_VERSION,
    tool: "bolt",
    target: { netns: plan.target },
    summary: { create: count("create"), update: count("update"), replace: count("replace"), delete: count("delete") },
    changes: plan.steps.map((s) => ({
      address: s.change.id,
      kind: s.change.kind,
      name: s.change.name,
      action: s.change.action,
      impact: impactOf(s.change),
      before: spec(s.change.before?.owned ? s.change.before : s.change.action === "create" ? undefined : s.change.before),
      after: spec(s.change.after),
      changed: s.change.changed,
      ...(s.change.after?.display ? { after_text: s.change.after.display } : {}),
      forces_replacement: s.change.forcedBy,
      source: s.change.source ?? null,
      commands: s.ops.map((o) => ({ tool: o.tool, netns: o.ns, args: o.args, phase: o.destroy ? "destroy" : "build" })),
    })),
    diagnostics: diagnostics.map((d) => ({ severity: d.severity, message: d.message, source: d.source ?? null, hint: d.hint ?? null })),
  };
}
