// The phases of `bolt plan` (src/cli/commands.ts cmdPlan), callable one by one. breakdown.js
// bundles this file with esbuild the way scripts/bundle.mjs bundles the CLI, so importing it
// costs what importing dist/cli/bolt.mjs costs (main is re-exported to pull in the same graph).
import { performance } from "node:perf_hooks";
import { loadIntent } from "../../dist/src/cli/config.js";
import { makeLogger } from "../../dist/src/cli/logger.js";
import { renderPlanText } from "../../dist/src/cli/render-text.js";
import { makePlan, readLive } from "../../dist/src/core/plan.js";
import { ProcessRunner } from "../../dist/src/exec/process-runner.js";
import { REGISTRY } from "../../dist/reconcilers/registry.js";
import { StateStore } from "../../dist/src/state/store.js";
export { main } from "../../dist/src/cli/main.js";

export async function planPhases(boltfile, target, prefix, stateDir) {
  const out = {};
  const phase = async (name, fn) => {
    const t0 = performance.now();
    const v = await fn();
    out[name] = performance.now() - t0;
    return v;
  };
  await phase("loggerMs", () => makeLogger("warn", false));
  const { intent } = await phase("loadIntentMs", () => loadIntent([boltfile], prefix));
  const runner = new ProcessRunner();
  // ProcessRunner loads execa on its first command: that cost lands here.
  await phase("checkTargetMs", () => runner.run(["ip", "-j", "netns", "list"]));
  const state = await phase("readStateMs", () => {
    try {
      const s = StateStore.openReadOnly(stateDir);
      const v = { leases: s.leases(target), originals: s.originals(target), journal: s.journal(target) };
      s.close();
      return v;
    } catch {
      return { leases: new Map(), originals: new Map() };
    }
  });
  const plan = await phase("makePlanMs", () => makePlan({ intent, runner, target, registry: REGISTRY, leases: state.leases, originals: state.originals }));
  await phase("renderMs", () => renderPlanText(plan, { color: false }));
  // For the split of makePlan: the same reads again on their own (warm); the rest is pure work.
  await phase("readLiveAgainMs", () => readLive(runner, target, REGISTRY, { deep: false, intent, originals: state.originals }));
  out.changes = plan.changes.length;
  return out;
}
