import { BoltError, EXIT } from "../core/diagnostics.js";
import { offlineInputs, readHostState } from "../core/host-state.js";
import { makePlan } from "../core/plan.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import type { GlobalOpts } from "./commands.js";
import { loadIntent } from "./config.js";
import { desiredGraph, renderDot, renderMermaid } from "./render-graph.js";

/**
 * `bolt graph -f FILE --format dot|mermaid`: the desired-state graph. Drawn offline (no kernel,
 * no root) against an empty state, or against an exported one with --state (addresses IPAM
 * would lease there).
 */
export async function cmdGraph(o: GlobalOpts & { format: string; stateFile?: string }): Promise<number> {
  const { intent } = loadIntent(o.file, o.netnsPrefix, { offline: true });
  const t = o.netns ?? null;
  const host = readHostState(o.stateFile ?? "none", t);
  const off = offlineInputs(host, o.netns ?? host.target, REGISTRY, intent);
  const plan = await makePlan({
    intent,
    runner: off.runner,
    target: o.netns ?? host.target,
    registry: REGISTRY,
    leases: off.leases,
    originals: off.originals,
    snapshot: off.snapshot,
  });
  const g = desiredGraph(plan.desired);
  if (o.format === "dot") o.out(renderDot(g));
  else if (o.format === "mermaid") o.out(renderMermaid(g));
  else throw new BoltError(`--format ${o.format}: use dot or mermaid`);
  return EXIT.OK;
}
