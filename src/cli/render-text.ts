import { formatPos, renderDiagnostics } from "../core/diagnostics.js";
import { summaryLine } from "../core/plan.js";
import type { Plan } from "../core/plan.js";
import type { Change, Resource } from "../core/resource.js";
import type { Ns } from "../exec/runner.js";
import { toolOf } from "../exec/tools.js";

const SYMBOL: Record<Change["action"], string> = { create: "+", update: "~", replace: "-/+", delete: "-" };

export interface TextOptions {
  color: boolean;
  showCommands?: boolean;
}

export function targetName(t: Ns): string {
  return t === null ? "the host namespace" : `netns ${t}`;
}

/** Terraform-style plan: one block per change, changed fields, and the config line behind it. */
export function renderPlanText(plan: Plan, opts: TextOptions): string {
  const c = colors(opts.color);
  const out: string[] = [];
  if (!plan.changes.length) {
    out.push(`No changes. ${cap(targetName(plan.target))} matches the configuration.`);
    return out.join("\n") + "\n";
  }
  out.push(`Bolt will perform the following actions in ${targetName(plan.target)}:`, "");
  plan.steps.forEach((step) => {
    const ch = step.change;
    const color = ch.action === "create" ? c.green : ch.action === "delete" ? c.red : ch.action === "replace" ? c.magenta : c.yellow;
    const where = ch.source ? c.dim(`  # ${ch.source.file}:${ch.source.line}`) : "";
    const forced = ch.forcedBy.length ? c.red(` (${ch.forcedBy.join(", ")} forces replacement)`) : "";
    out.push(`  ${color(SYMBOL[ch.action].padStart(3))} ${ch.kind} "${ch.name}"${forced}${where}`);
    for (const l of fieldLines(ch)) out.push(`        ${l}`);
    if (opts.showCommands)
      for (const op of step.ops) out.push(c.dim(`        $ ${op.ns === null ? "" : `[${op.ns}] `}${toolOf(op.tool).prefix}${op.args.join(" ")}`));
    out.push("");
  });
  out.push(summaryLine(plan.changes));
  return out.join("\n") + "\n";
}

function fieldLines(ch: Change): string[] {
  const show = (r: Resource | undefined, k: string) => {
    if (!r) return "-";
    if (r.sensitive?.includes(k) && r.spec[k]) return "(sensitive)"; // no value (no PSK) tells nothing
    const v = r.display?.[k] ?? r.spec[k];
    return v === undefined || v === "" ? "-" : JSON.stringify(v);
  };
  const keys = Object.keys(ch.after?.spec ?? ch.before?.spec ?? {});
  const width = Math.min(40, Math.max(0, ...keys.map((k) => k.length)));
  if (ch.action === "create") {
    // A create with a `before` takes over an existing value (an adopted sysctl): show it.
    return keys.map((k) => `${k.padEnd(width)} = ${show(ch.after, k)}${ch.before ? ` (now ${show(ch.before, k)})` : ""}`);
  }
  if (ch.action === "delete") {
    const restores = ch.before?.restores;
    if (restores) return Object.entries(restores).map(([k, v]) => `${k} = ${show(ch.before, k)} -> ${JSON.stringify(v)} (restored)`);
    return keys.map((k) => `${k.padEnd(width)} = ${show(ch.before, k)}`);
  }
  const lines = ch.changed.map((k) => {
    const src = ch.after?.fieldSources?.[k];
    const where = src ? `  # ${src.file}:${src.line}` : "";
    // Digest-compared fields (nft rules): the old text is not in the kernel, show what is wanted.
    if (ch.after?.display) {
      if (!(k in (ch.before?.spec ?? {}))) return `+ ${k.padEnd(width)} = ${show(ch.after, k)}${where}`;
      if (!(k in ch.after.spec)) return `- ${k}`;
      return `~ ${k.padEnd(width)} = ${show(ch.after, k)}${where}`;
    }
    return `~ ${k.padEnd(width)} = ${show(ch.before, k)} -> ${show(ch.after, k)}${ch.forcedBy.includes(k) ? "  # forces replacement" : ""}${where}`;
  });
  const hidden = keys.length - ch.changed.filter((k) => k in (ch.after?.spec ?? {})).length;
  if (hidden > 0) lines.push(`(${hidden} unchanged field${hidden === 1 ? "" : "s"} hidden)`);
  return lines;
}

export function renderShow(resources: Resource[], target: Ns): string {
  if (!resources.length) return `bolt owns nothing in ${targetName(target)}.\n`;
  const out = [`bolt owns in ${targetName(target)}:`];
  for (const r of resources) {
    out.push(`  ${r.kind} "${r.name}"`);
    const counters = r.counters ?? {};
    for (const [k, v] of Object.entries(r.spec)) {
      const c = counters[k] ? `  [${counters[k]}]` : "";
      out.push(`      ${k} = ${r.sensitive?.includes(k) && v ? "(sensitive)" : v === "" ? "-" : v}${c}`);
    }
    // Counters of no spec field (an eBPF program's run count and maps): shown after the fields.
    for (const [k, v] of Object.entries(counters)) if (!(k in r.spec) && v) out.push(`      ${k}: ${v}`);
  }
  return out.join("\n") + "\n";
}

export { formatPos, renderDiagnostics, summaryLine };

function cap(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}

function colors(on: boolean) {
  const wrap = (code: number) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { green: wrap(32), red: wrap(31), yellow: wrap(33), magenta: wrap(35), dim: wrap(2) };
}
