import { BoltError, EXIT } from "../core/diagnostics.js";
import { offlineInputs, readHostState } from "../core/host-state.js";
import { makePlan } from "../core/plan.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import type { GlobalOpts } from "./commands.js";
import { loadIntent } from "./config.js";
import { desiredGraph, liveGraph, renderDot, renderMermaid, renderSvg } from "./render-graph.js";
import type { Graph } from "./render-graph.js";
import { ProcessRunner } from "../exec/process-runner.js";
import { readLive } from "../core/plan.js";
import { emptyIntent } from "../core/intent.js";
import { withRates } from "../core/stats.js";
import { sampleStats } from "./cmd-stats.js";
import { checkTarget, readState } from "./commands.js";

/**
 * `bolt graph -f FILE --format dot|mermaid|svg`: the desired-state graph. Drawn offline (no
 * kernel, no root) against an empty state, or against an exported one with --state (addresses
 * IPAM would lease there). `--live`: the topology read from the kernel instead.
 */
export async function cmdGraph(o: GlobalOpts & { format: string; stateFile?: string; live?: boolean; rates?: boolean }): Promise<number> {
  if (!o.live && !o.file.length) throw new BoltError("no config file given: use -f bolt-network.toml (repeatable), or --live to draw what the kernel has");
  const g = o.live ? await kernelGraph(o) : await plannedGraph(o);
  if (o.format === "dot") o.out(renderDot(g));
  else if (o.format === "mermaid") o.out(renderMermaid(g));
  else if (o.format === "svg") o.out(renderSvg(g));
  else throw new BoltError(`--format ${o.format}: use dot, mermaid or svg`);
  return EXIT.OK;
}

/**
 * `--live`: what the target's kernel has of bolt's right now (read like `bolt show`), with
 * traffic from a stats sample; `--rates` takes a second sample a second later for rates.
 */
async function kernelGraph(o: GlobalOpts & { rates?: boolean }): Promise<Graph> {
  const runner = o.runner ?? new ProcessRunner();
  const t = o.netns ?? null;
  await checkTarget(runner, t);
  const { originals } = readState(o);
  const snap = await readLive(runner, t, REGISTRY, { deep: false, intent: emptyIntent(), originals });
  // The first sample reuses this read (the WireGuard dumps too: the reader memoizes them).
  let stats = await sampleStats(runner, t, originals, false, snap);
  if (o.rates) {
    await new Promise((r) => setTimeout(r, 1000));
    stats = withRates(stats, await sampleStats(runner, t, originals, false));
  }
  return liveGraph(
    [...snap.live.values()].filter((r) => r.owned),
    stats,
  );
}

async function plannedGraph(o: GlobalOpts & { stateFile?: string }): Promise<Graph> {
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
  return desiredGraph(plan.desired);
}
