// Golden plan cases: each folder under cases/ is config + recorded kernel reads + the expected
// plan, so a new case is a folder, not code (see README.md). The harness runs loadIntent +
// makePlan over a ReplayRunner of live.json and compares the text plan (what `bolt plan
// --show-commands` prints, diagnostics first), the JSON plan, and every op's undo (undo.txt).
// UPDATE_GOLDEN=1 rewrites them.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { keyModes } from "./key-modes.js";
import { describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { planJson } from "../../src/cli/render-json.js";
import { renderDiagnostics, renderPlanText } from "../../src/cli/render-text.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { makePlan } from "../../src/core/plan.js";
import type { Plan } from "../../src/core/plan.js";
import type { OpLine } from "../../src/core/resource.js";
import type { Intent } from "../../src/core/intent.js";
import { ReplayRunner } from "../../src/exec/replay-runner.js";
import { RUN_DIR } from "../../src/exec/run-dir.js";
import { toolOf } from "../../src/exec/tools.js";
import type { RecordedOutput } from "../../src/exec/replay-runner.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import { emptyIntent } from "../../src/core/intent.js";

const TARGET = "bolt-t-golden";
const PREFIX = "bolt-t-golden-";
const CASES = fileURLToPath(new URL("./cases/", import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === "1";

/** case.json: what the CLI would add from its flags and state store. */
interface CaseOptions {
  destroy?: boolean;
  leases?: Record<string, string>;
  originals?: Record<string, string>;
}

/** Recorded files name the case folder `@CASE@` (record.mjs) and bolt's run dir `@RUN@`, so a case replays from any checkout. */
const read = (dir: string, f: string) => readFileSync(join(dir, f), "utf8").replaceAll("@CASE@", dir).replaceAll("@RUN@", RUN_DIR());

/** One argv word: as is, or JSON-quoted when empty or holding blanks or quotes. */
const word = (a: string) => (a === "" || /[\s"'\\]/.test(a) ? JSON.stringify(a) : a);

/** An op line as plan.txt prints it, with the namespace always named. */
function commandLine(l: OpLine): string {
  const tool = toolOf(l.tool).prefix.split(" ").filter(Boolean);
  return `[${l.ns ?? "host"}] ${[...tool, ...l.args.map(word)].join(" ")}`;
}

/** A command, then its standard input (an `nft -f -` script, a file's content) in full, one `|` line each. */
function commandBlock(l: OpLine, indent: string, head: string): string[] {
  const out = [`${indent}${head}${commandLine(l)}`];
  if (l.stdin !== undefined) for (const s of l.stdin.replace(/\n$/, "").split("\n")) out.push(`${indent}${" ".repeat(head.length)}| ${s}`.trimEnd());
  return out;
}

/**
 * undo.txt: per step in plan order its change, then per op the forward command and the lines
 * that undo it (what a failed apply runs, in reverse op order), stdin in full.
 */
function renderUndo(plan: Plan, hasErrors: boolean): string {
  if (hasErrors) return "No plan: the configuration has errors (see plan.txt).\n";
  if (!plan.steps.length) return "No changes.\n";
  const out: string[] = [];
  for (const step of plan.steps) {
    const ch = step.change;
    out.push(`${ch.action} ${ch.kind} "${ch.name}"`);
    for (const op of step.ops) {
      out.push(...commandBlock(op, "  ", op.destroy ? "$ (destroy) " : "$ "));
      if (!op.undo.length) out.push("      undo: (none)");
      for (const u of op.undo) out.push(...commandBlock(u, "      ", "undo "));
    }
    out.push("");
  }
  return out.join("\n");
}

async function render(dir: string): Promise<{ text: string; json: string; undo: string }> {
  keyModes(dir);
  const opts: CaseOptions = existsSync(join(dir, "case.json")) ? JSON.parse(read(dir, "case.json")) : {};
  const files = readdirSync(dir)
    .filter((f) => /\.(toml|ya?ml)$/.test(f))
    .sort()
    .map((f) => join(dir, f));
  // Like the CLI: destroy plans against an empty intent and never reads the config.
  const { intent, warnings }: { intent: Intent; warnings: Diagnostic[] } = opts.destroy ? { intent: emptyIntent(), warnings: [] } : loadIntent(files, PREFIX);
  const runner = new ReplayRunner(JSON.parse(read(dir, "live.json")) as Record<string, RecordedOutput>);
  const plan = await makePlan({
    intent,
    runner,
    target: TARGET,
    registry: REGISTRY,
    leases: new Map(Object.entries(opts.leases ?? {})),
    originals: new Map(Object.entries(opts.originals ?? {})),
    destroy: !!opts.destroy,
  });
  expect(runner.writes, "planning wrote to the kernel").toEqual([]);
  const diags = [...warnings, ...plan.diagnostics];
  // What the CLI prints: diagnostics, then the plan unless there is an error.
  const parts = diags.length ? [renderDiagnostics(diags) + "\n"] : [];
  if (!diags.some((d) => d.severity === "error")) parts.push(renderPlanText(plan, { color: false, showCommands: true }));
  // Config positions are printed relative to the case folder.
  const rel = (s: string) => s.replaceAll(`${dir}/`, "");
  return {
    text: rel(parts.join("\n")),
    json: rel(JSON.stringify(planJson(plan, diags), null, 2) + "\n"),
    undo: rel(
      renderUndo(
        plan,
        diags.some((d) => d.severity === "error"),
      ),
    ),
  };
}

const cases = readdirSync(CASES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe("golden plan cases", () => {
  it("has cases", () => expect(cases.length).toBeGreaterThan(0));

  it.each(cases)("%s", async (name) => {
    const dir = join(CASES, name);
    const got = await render(dir);
    if (UPDATE) {
      writeFileSync(join(dir, "plan.txt"), got.text);
      writeFileSync(join(dir, "plan.json"), got.json);
      writeFileSync(join(dir, "undo.txt"), got.undo);
      return;
    }
    expect(existsSync(join(dir, "plan.txt")), `${name}/plan.txt missing: run UPDATE_GOLDEN=1 npx vitest run test/golden`).toBe(true);
    expect(got.text).toBe(read(dir, "plan.txt"));
    expect(got.json).toBe(read(dir, "plan.json"));
    expect(existsSync(join(dir, "undo.txt")), `${name}/undo.txt missing: run UPDATE_GOLDEN=1 npx vitest run test/golden`).toBe(true);
    expect(got.undo).toBe(read(dir, "undo.txt"));
  });
});
