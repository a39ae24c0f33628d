import { BoltError, EXIT } from "../core/diagnostics.js";
import { fingerprint, liveDrift, liveEntries, readSavedPlan } from "../core/saved-plan.js";
import { ProcessRunner } from "../exec/process-runner.js";
import { TargetLock } from "../state/lock.js";
import { StateStore, targetKey } from "../state/store.js";
import { checkTarget, printWarnings } from "./commands.js";
import type { GlobalOpts } from "./commands.js";
import { reconcile } from "./reconcile.js";
import type { ConfirmOptions } from "./reconcile.js";
import { planJson } from "./render-json.js";
import { renderPlanText, summaryLine, targetName } from "./render-text.js";

/**
 * `bolt apply plan.json`: applies exactly a saved plan. The kernel is read again under the
 * lock; if what the plan was made against changed since (fingerprint), nothing is written.
 */
export async function cmdApplyPlan(o: GlobalOpts & { planFile: string; showCommands?: boolean; confirm?: ConfirmOptions }): Promise<number> {
  const saved = readSavedPlan(o.planFile);
  if (o.file.length) throw new BoltError(`apply ${o.planFile}: a saved plan carries its configuration; drop -f (or plan again with these files)`);
  if (o.netns !== undefined && o.netns !== saved.target) throw new BoltError(`${o.planFile} was made for ${targetName(saved.target)}, not ${targetName(o.netns)}`);
  const t = saved.target;
  const runner = o.runner ?? new ProcessRunner();
  await checkTarget(runner, t);
  const store = new StateStore(o.stateDir);
  const lock = new TargetLock(o.stateDir, targetKey(t));
  try {
    await lock.acquire(o.lockTimeout * 1000);
    const { plan, result } = await reconcile({
      runner,
      target: t,
      store,
      intent: saved.intent,
      warnings: [],
      command: `apply ${o.planFile}`,
      log: o.log,
      destroy: saved.destroy,
      deep: saved.deep,
      desired: saved.destroy ? undefined : saved.desired,
      confirm: o.confirm,
      onPlan: (plan, diags) => {
        const now = liveEntries(plan.before);
        const changed = fingerprint(now) !== saved.fingerprint ? liveDrift(saved.live, now) : [];
        const planned = plan.changes.map((c) => `${c.action} ${c.id}`).join("\n");
        const wanted = saved.changes.map((c) => `${c.action} ${c.address}`).join("\n");
        if (changed.length || planned !== wanted) {
          throw new BoltError(
            `the saved plan ${o.planFile} is stale: ${targetName(t)} changed since it was made (${saved.created_at})${changed.length ? `: ${changed.join("; ")}` : ""}. Nothing was applied; run \`bolt plan --out ${o.planFile}\` again and review it.`,
          );
        }
        if (o.json) o.out(JSON.stringify(planJson(plan, diags), null, 2) + "\n");
        else {
          printWarnings(o, diags);
          o.out(renderPlanText(plan, { color: !!process.stdout.isTTY, showCommands: o.showCommands }));
        }
      },
    });
    if (result && !o.json) o.out(`\nApply complete! ${summaryLine(plan.changes).replace(/^Plan: /, "Resources: ").replace(/ to /g, " ").replace("add", "added").replace("change,", "changed,").replace("replace,", "replaced,").replace("destroy.", "destroyed.")}\n`);
    return EXIT.OK;
  } catch (e) {
    try {
      store.addHistory(t, `apply ${o.planFile}`, "", `failed: ${(e as Error).message.split("\n")[0]}`);
    } catch {
      /* best effort */
    }
    throw e;
  } finally {
    lock.release();
    store.close();
  }
}
