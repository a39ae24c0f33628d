import { BoltError, EXIT } from "../core/diagnostics.js";
import { fingerprint, liveDrift, liveEntries, readSavedPlan } from "../core/saved-plan.js";
import { planPrinter, resourcesLine, withTarget } from "./commands.js";
import type { GlobalOpts } from "./commands.js";
import { reconcile } from "../core/reconcile.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import type { ConfirmOptions } from "../core/reconcile.js";
import { targetName } from "./render-text.js";

/**
 * `bolt apply plan.json`: applies exactly a saved plan. The kernel is read again under the
 * lock; if what the plan was made against changed since (fingerprint), nothing is written.
 */
export async function cmdApplyPlan(o: GlobalOpts & { planFile: string; showCommands?: boolean; confirm?: ConfirmOptions }): Promise<number> {
  const saved = readSavedPlan(o.planFile);
  if (o.file.length) throw new BoltError(`apply ${o.planFile}: a saved plan carries its configuration; drop -f (or plan again with these files)`);
  if (o.netns !== undefined && o.netns !== saved.target)
    throw new BoltError(`${o.planFile} was made for ${targetName(saved.target)}, not ${targetName(o.netns)}`);
  const t = saved.target;
  const command = `apply ${o.planFile}`;
  const show = planPrinter(o, o.showCommands);
  return withTarget(o, t, command, async ({ runner, store }) => {
    const { plan, result } = await reconcile({
      registry: REGISTRY,
      runner,
      target: t,
      store,
      intent: saved.intent,
      warnings: [],
      command,
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
        show(plan, diags);
      },
    });
    if (result && !o.json) o.out(`\nApply complete! ${resourcesLine(plan.changes)}\n`);
    return EXIT.OK;
  });
}
