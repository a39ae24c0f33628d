import type { Diagnostic } from "../core/diagnostics.js";
import type { Plan } from "../core/plan.js";
import type { Change, Resource } from "../core/resource.js";

/**
 * The versioned machine-readable plan (docs/plan-json.md). Bump FORMAT_VERSION's major on any
 * incompatible change; additions keep the major.
 */
export const FORMAT_VERSION = "1.0";

export type Impact = "update" | "create" | "replace" | "delete" | "connectivity";

/** Fields whose change moves addresses, routes or ports that live traffic depends on. */
const CONNECTIVITY_FIELDS = ["address", "ip", "gateway", "bridge", "netns", "state"];

export function impactOf(c: Change): Impact {
  const touchesTraffic = c.kind === "network" || c.kind === "endpoint";
  if (c.action === "update") return touchesTraffic && c.changed.some((f) => CONNECTIVITY_FIELDS.includes(f)) ? "connectivity" : "update";
  if (c.action === "create") return "create";
  return touchesTraffic ? "connectivity" : c.action;
}

function spec(r: Resource | undefined): Record<string, string> | null {
  if (!r) return null;
  const out = { ...r.spec };
  for (const k of r.sensitive ?? []) if (k in out) out[k] = "(sensitive)";
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
