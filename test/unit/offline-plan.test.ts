// Offline plans (`bolt plan --state host.json`) must equal live plans: for every golden case
// (config + recorded kernel reads), export the state from the recorded kernel, plan against the
// export with no runner behind it, and compare with the plan made against the recorded kernel.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { planJson } from "../../src/cli/render-json.js";
import { dropDigestEqual, emptyState, exportState, offlineInputs, readHostState } from "../../src/core/host-state.js";
import { makePlan } from "../../src/core/plan.js";
import type { Intent } from "../../src/core/intent.js";
import { ReplayRunner } from "../../src/exec/replay-runner.js";
import type { RecordedOutput } from "../../src/exec/replay-runner.js";
import type { CommandRunner } from "../../src/exec/runner.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import { compileRegistry } from "../../src/core/registry.js";
import { emptyIntent } from "../../src/core/intent.js";
import { keyModes } from "../golden/key-modes.js";

const TARGET = "bolt-t-golden";
const PREFIX = "bolt-t-golden-";
const CASES = fileURLToPath(new URL("../golden/cases/", import.meta.url));
const cases = readdirSync(CASES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

/** The recorded kernel; a read the case did not record answers as a failed command. */
function recorded(dir: string): CommandRunner {
  const replay = new ReplayRunner(JSON.parse(readFileSync(join(dir, "live.json"), "utf8")) as Record<string, RecordedOutput>);
  return { run: (argv, stdin) => replay.run(argv, stdin).catch(() => ({ stdout: "", stderr: "not recorded", code: 1 })) };
}

function caseInput(dir: string) {
  keyModes(dir);
  const opts = existsSync(join(dir, "case.json")) ? JSON.parse(readFileSync(join(dir, "case.json"), "utf8")) : {};
  const files = readdirSync(dir)
    .filter((f) => /\.(toml|ya?ml)$/.test(f))
    .sort()
    .map((f) => join(dir, f));
  const intent: Intent = opts.destroy ? emptyIntent() : loadIntent(files, PREFIX).intent;
  return {
    intent,
    destroy: !!opts.destroy,
    leases: new Map<string, string>(Object.entries(opts.leases ?? {})),
    originals: new Map<string, string>(Object.entries(opts.originals ?? {})),
  };
}

const comparable = (j: ReturnType<typeof planJson>) => ({
  summary: j.summary,
  changes: j.changes,
  errors: j.diagnostics.filter((d) => d.severity === "error").map((d) => d.message),
});

describe("offline plan from an exported state", () => {
  it.each(cases)("%s: equals the live plan", async (name) => {
    const dir = join(CASES, name);
    const c = caseInput(dir);
    const live = await makePlan({ ...c, runner: recorded(dir), target: TARGET, registry: REGISTRY });
    const { state } = await exportState(recorded(dir), TARGET, REGISTRY, c.intent, c);
    // Through JSON, as the file travels to the CI runner.
    const off = offlineInputs(JSON.parse(JSON.stringify(state)), TARGET, REGISTRY);
    const offline = dropDigestEqual(
      await makePlan({ ...c, runner: off.runner, leases: off.leases, originals: off.originals, target: TARGET, registry: REGISTRY, snapshot: off.snapshot }),
    );
    expect(comparable(planJson(offline, offline.diagnostics))).toEqual(comparable(planJson(live, live.diagnostics)));
  });

  it("an empty state plans every desired resource as a create, with no kernel", async () => {
    const dir = join(CASES, "noop");
    const c = caseInput(dir);
    const off = offlineInputs(emptyState(TARGET), TARGET, REGISTRY, c.intent);
    const plan = await makePlan({
      ...c,
      runner: off.runner,
      leases: new Map(),
      originals: new Map(),
      target: TARGET,
      registry: REGISTRY,
      snapshot: off.snapshot,
    });
    expect(plan.changes.length).toBeGreaterThan(0);
    expect(plan.changes.every((x) => x.action === "create")).toBe(true);
    expect(plan.changes.map((x) => x.id).sort()).toEqual(plan.desired.map((d) => d.id).sort());
  });

  it("--state none / an empty file is the empty state; other files must be exports", () => {
    expect(readHostState("none", "x").resources).toEqual([]);
    expect(() => readHostState("/nonexistent/host.json", null)).toThrow(/cannot read state file .*ENOENT.*bolt state export/);
    expect(() => readHostState(fileURLToPath(import.meta.url), null)).toThrow(/not a bolt state export/);
  });

  it("the export carries no counters and digests sensitive values", async () => {
    const runner: CommandRunner = {
      run: async () => ({ stdout: "[]", stderr: "", code: 0 }),
    };
    const registry = compileRegistry([
      {
        kind: "secretish",
        phases: { write: {} },
        replaceOn: [],
        desired: () => ({ resources: [], diagnostics: [] }),
        read: async () => ({
          resources: [
            {
              kind: "secretish",
              name: "a",
              id: "secretish:a",
              keys: [],
              spec: { psk: "hunter2", port: "1" },
              sensitive: ["psk"],
              counters: { x: "1 packets, 2 bytes" },
              data: { keep: 1 },
              deps: [],
              owned: true,
            },
          ],
          foreign: new Map(),
        }),
        render: () => [],
      },
    ]);
    const { state } = await exportState(runner, null, registry, emptyIntent(), { leases: new Map(), originals: new Map() });
    const text = JSON.stringify(state);
    expect(text).not.toContain("hunter2");
    expect(state.resources[0]!.spec.psk).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(state.resources[0]!.data).toEqual({ keep: 1 });
    expect(state.resources[0]!.counters).toBeUndefined();
  });
});
