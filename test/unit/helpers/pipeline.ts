// The whole pipeline in-process, for fake-kernel tests: config text → intent → plan → apply.
// Tests call these instead of the core's entry points so that the core's signatures can
// change without touching every kind test.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadIntent } from "../../../src/cli/config.js";
import { applyPlan } from "../../../src/core/apply.js";
import type { ApplyResult, JournalSink } from "../../../src/core/apply.js";
import { makePlan } from "../../../src/core/plan.js";
import type { Plan } from "../../../src/core/plan.js";
import type { Intent } from "../../../src/core/intent.js";
import { compileRegistry } from "../../../src/core/registry.js";
import type { Reconciler } from "../../../src/core/resource.js";
import type { CommandRunner, Ns } from "../../../src/exec/runner.js";
import { RECONCILERS } from "../../../src/reconcilers/registry.js";

export { RECONCILERS };

/** Writes config files (name → text) into a fresh directory and returns their paths. */
export function writeConfigs(files: Record<string, string>): string[] {
  const dir = mkdtempSync(join(tmpdir(), "bolt-unit-"));
  return Object.entries(files).map(([name, text]) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  });
}

export function intentOf(paths: string[], opts: { netnsPrefix?: string; offline?: boolean } = {}): Intent {
  return loadIntent(paths, opts.netnsPrefix, { offline: opts.offline }).intent;
}

export interface PlanOptions {
  target: Ns;
  leases?: Map<string, string>;
  originals?: Map<string, string>;
  destroy?: boolean;
  deep?: boolean;
}

/** The registry as the core wants it; tests may pass a modified list of kinds (e.g. one kind's undo removed). */
const registryOf = (kinds: Reconciler[] = RECONCILERS) => compileRegistry(kinds, { partial: kinds !== RECONCILERS });

export async function planIntent(intent: Intent, runner: CommandRunner, o: PlanOptions & { registry?: Reconciler[] }): Promise<Plan> {
  return makePlan({ intent, runner, target: o.target, registry: registryOf(o.registry), leases: o.leases ?? new Map(), originals: o.originals ?? new Map(), destroy: o.destroy, deep: o.deep });
}

export const memoryJournal = (): JournalSink & { payloads: string[] } => {
  const payloads: string[] = [];
  return { payloads, writeJournal: (_t, p) => void payloads.push(p), clearJournal: () => {} };
};

export async function applyIntent(plan: Plan, intent: Intent, runner: CommandRunner, o: { originals?: Map<string, string>; journal?: JournalSink; registry?: Reconciler[] } = {}): Promise<ApplyResult> {
  return applyPlan(plan, { runner, registry: registryOf(o.registry), journal: o.journal ?? memoryJournal(), intent, originals: o.originals ?? new Map(), verifyAttempts: 1 });
}
