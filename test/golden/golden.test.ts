// Golden plan cases: each folder under cases/ is config + recorded kernel reads + the expected
// plan, so a new case is a folder, not code (see README.md). The harness runs loadIntent +
// makePlan over a ReplayRunner of live.json and compares the text plan (what `bolt plan
// --show-commands` prints, diagnostics first) and the JSON plan. UPDATE_GOLDEN=1 rewrites them.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { planJson } from "../../src/cli/render-json.js";
import { renderDiagnostics, renderPlanText } from "../../src/cli/render-text.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { makePlan } from "../../src/core/plan.js";
import type { Intent } from "../../src/config/model.js";
import { ReplayRunner } from "../../src/exec/replay-runner.js";
import type { RecordedOutput } from "../../src/exec/replay-runner.js";
import { RECONCILERS } from "../../src/reconcilers/registry.js";

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

const read = (dir: string, f: string) => readFileSync(join(dir, f), "utf8");

async function render(dir: string): Promise<{ text: string; json: string }> {
  const opts: CaseOptions = existsSync(join(dir, "case.json")) ? JSON.parse(read(dir, "case.json")) : {};
  const files = readdirSync(dir).filter((f) => /\.(toml|ya?ml)$/.test(f)).sort().map((f) => join(dir, f));
  // Like the CLI: destroy plans against an empty intent and never reads the config.
  const { intent, warnings }: { intent: Intent; warnings: Diagnostic[] } = opts.destroy
    ? { intent: { networks: [], endpoints: [], sysctls: [], files: [] }, warnings: [] }
    : loadIntent(files, PREFIX);
  const runner = new ReplayRunner(JSON.parse(read(dir, "live.json")) as Record<string, RecordedOutput>);
  const plan = await makePlan({
    intent,
    runner,
    target: TARGET,
    registry: RECONCILERS,
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
  return { text: rel(parts.join("\n")), json: rel(JSON.stringify(planJson(plan, diags), null, 2) + "\n") };
}

const cases = readdirSync(CASES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

describe("golden plan cases", () => {
  it("has cases", () => expect(cases.length).toBeGreaterThan(0));

  it.each(cases)("%s", async (name) => {
    const dir = join(CASES, name);
    const got = await render(dir);
    if (UPDATE) {
      writeFileSync(join(dir, "plan.txt"), got.text);
      writeFileSync(join(dir, "plan.json"), got.json);
      return;
    }
    expect(existsSync(join(dir, "plan.txt")), `${name}/plan.txt missing: run UPDATE_GOLDEN=1 npx vitest run test/golden`).toBe(true);
    expect(got.text).toBe(read(dir, "plan.txt"));
    expect(got.json).toBe(read(dir, "plan.json"));
  });
});
