import { toolOf } from "../exec/tools.js";
import type { Diagnostic } from "../core/diagnostics.js";
import { formatPos } from "../core/diagnostics.js";
import type { Plan } from "../core/plan.js";
import type { Change, Resource } from "../core/resource.js";
import { summaryLine, targetName } from "./render-text.js";

export interface MarkdownOptions {
  showCommands?: boolean;
  /** the plan was made against an exported state (bolt plan --state) */
  state?: { host: string; exportedAt: string };
}

const LABEL: Record<Change["action"], string> = { create: "+ create", update: "~ update", replace: "-/+ replace", delete: "- destroy" };

/**
 * A plan as a pull-request comment: a summary line, a table of changes with the config line
 * behind each, then the field-level diff in a collapsed ```diff block (GitHub colours + and -).
 */
export function renderPlanMarkdown(plan: Plan, diags: Diagnostic[], opts: MarkdownOptions = {}): string {
  const out: string[] = [];
  const where = targetName(plan.target);
  const against = opts.state
    ? opts.state.host
      ? ` — against the state of \`${opts.state.host}\` exported ${opts.state.exportedAt}`
      : " — against an empty state"
    : "";
  out.push(`### bolt plan: ${where}${against}`, "");
  const errors = diags.filter((d) => d.severity === "error");
  const warnings = diags.filter((d) => d.severity === "warning");
  for (const d of [...errors, ...warnings])
    out.push(
      `> **${d.severity === "error" ? "Error" : "Warning"}:** ${inline(d.source ? `${formatPos(d.source)}: ${d.message}` : d.message)}${d.hint ? ` (${inline(d.hint)})` : ""}`,
      ">",
    );
  if (errors.length + warnings.length) {
    out.pop();
    out.push("");
  }
  if (!plan.changes.length) {
    out.push(`**No changes.** ${where[0]!.toUpperCase()}${where.slice(1)} matches the configuration.`);
    return out.join("\n") + "\n";
  }
  out.push(`**${summaryLine(plan.changes)}**`, "");
  out.push("| action | resource | fields | config |", "| --- | --- | --- | --- |");
  for (const c of plan.changes) {
    const fields =
      c.action === "create" || c.action === "delete" ? "" : c.changed.map((f) => (c.forcedBy.includes(f) ? `**${f}** (forces replacement)` : f)).join(", ");
    out.push(
      `| \`${LABEL[c.action]}\` | \`${c.kind}.${cell(c.name)}\` | ${cell(fields)} | ${c.source ? `\`${cell(`${c.source.file}:${c.source.line}`)}\`` : ""} |`,
    );
  }
  out.push("", "<details><summary>Details</summary>", "", "```diff");
  for (const step of plan.steps) {
    const c = step.change;
    out.push(`${c.action === "create" ? "+" : c.action === "delete" ? "-" : "!"} ${c.kind} "${c.name}"${c.action === "replace" ? " (replace)" : ""}`);
    out.push(...fieldDiff(c));
    if (opts.showCommands) for (const op of step.ops) out.push(`#     $ ${op.ns === null ? "" : `[${op.ns}] `}${toolOf(op.tool).prefix}${op.args.join(" ")}`);
  }
  out.push("```", "", "</details>");
  return out.join("\n") + "\n";
}

function value(r: Resource | undefined, k: string): string {
  if (!r) return "-";
  if (r.sensitive?.includes(k) && r.spec[k]) return "(sensitive)"; // no value (no PSK) tells nothing
  const v = r.display?.[k] ?? r.spec[k];
  return v === undefined || v === "" ? "-" : JSON.stringify(v);
}

function fieldDiff(c: Change): string[] {
  if (c.action === "create") return Object.keys(c.after?.spec ?? {}).map((k) => `+     ${k} = ${value(c.after, k)}`);
  if (c.action === "delete") return Object.keys(c.before?.spec ?? {}).map((k) => `-     ${k} = ${value(c.before, k)}`);
  const lines: string[] = [];
  for (const k of c.changed) {
    if (k in (c.before?.spec ?? {}) && !c.after?.display) lines.push(`-     ${k} = ${value(c.before, k)}`);
    if (k in (c.after?.spec ?? {})) lines.push(`+     ${k} = ${value(c.after, k)}${c.forcedBy.includes(k) ? "  # forces replacement" : ""}`);
  }
  return lines;
}

/** A table cell: pipes and newlines would end the cell or the row. */
function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function inline(s: string): string {
  return s.replace(/\n/g, " ");
}
