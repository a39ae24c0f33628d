import type { Logger } from "pino";
import { BoltError, EXIT } from "../core/diagnostics.js";
import type { Diagnostic } from "../core/diagnostics.js";
import { applyPlan } from "../core/apply.js";
import { makePlan, readLive } from "../core/plan.js";
import type { Plan } from "../core/plan.js";
import { recoverJournal } from "../core/recover.js";
import type { Intent } from "../config/model.js";
import { ExecaRunner } from "../exec/execa-runner.js";
import type { CommandRunner, Ns } from "../exec/runner.js";
import { RECONCILERS } from "../reconcilers/registry.js";
import { TargetLock } from "../state/lock.js";
import { StateStore, targetKey } from "../state/store.js";
import { loadIntent } from "./config.js";
import { planJson } from "./render-json.js";
import { renderDiagnostics, renderPlanText, renderShow, summaryLine, targetName } from "./render-text.js";
import { analyzeForeign } from "../reconcilers/nft/analyze.js";
import type { BoltFlows, Finding } from "../reconcilers/nft/analyze.js";

export interface GlobalOpts {
  file: string[];
  netns?: string;
  stateDir: string;
  netnsPrefix?: string;
  lockTimeout: number;
  json?: boolean;
  log: Logger;
  runner?: CommandRunner;
  out: (s: string) => void;
  err: (s: string) => void;
}

const EMPTY_INTENT: Intent = { networks: [], endpoints: [], sysctls: [], files: [] };

function target(o: GlobalOpts): Ns {
  return o.netns ?? null;
}

async function checkTarget(runner: CommandRunner, t: Ns): Promise<void> {
  if (t === null) return;
  const r = await runner.run(["ip", "-j", "netns", "list"]);
  const names = r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name) : [];
  if (!names.includes(t)) throw new BoltError(`network namespace "${t}" does not exist (create it with \`ip netns add ${t}\`; bolt never creates its target)`);
}

function printWarnings(o: GlobalOpts, diags: Diagnostic[]) {
  const warn = diags.filter((d) => d.severity === "warning");
  if (warn.length && !o.json) o.err(renderDiagnostics(warn) + "\n");
}

/** Opens the store read-only for planning: a plan never writes, not even a new state dir. */
function readState(o: GlobalOpts): { leases: Map<string, string>; originals: Map<string, string>; pendingJournal: boolean } {
  let store: StateStore | undefined;
  try {
    store = StateStore.openReadOnly(o.stateDir);
  } catch {
    return { leases: new Map(), originals: new Map(), pendingJournal: false };
  }
  try {
    const t = target(o);
    return { leases: store.leases(t), originals: store.originals(t), pendingJournal: !!store.journal(t) };
  } finally {
    store.close();
  }
}

function flowsOf(intent: Intent): BoltFlows {
  return {
    bridges: intent.networks.map((n) => n.bridge),
    subnets: intent.networks.map((n) => n.subnet),
    forwards: intent.networks.some((n) => n.internet) || !!intent.nft?.portForwards.length,
    hostPorts: (intent.nft?.portForwards ?? []).map((p) => ({ protocol: p.protocol, port: p.hostPort })),
    resolving: !!intent.nft?.dockerResolution,
  };
}

/** `[firewall] mode = "intelligent"` or docker_conflict_resolution: foreign rulesets analysed in plan. */
async function foreignWarnings(runner: CommandRunner, t: Ns, intent: Intent): Promise<Diagnostic[]> {
  if (!intent.nft?.analyzeForeign && !intent.nft?.dockerResolution) return [];
  const findings = await analyzeForeign(runner, t, flowsOf(intent));
  return findings.filter((f) => f.severity !== "info").map((f) => ({ severity: "warning" as const, message: `firewall analysis: ${f.message}`, hint: f.fix }));
}

export async function cmdFirewallAnalyze(o: GlobalOpts): Promise<number> {
  const { intent } = o.file.length ? loadIntent(o.file, o.netnsPrefix) : { intent: EMPTY_INTENT };
  const runner = o.runner ?? new ExecaRunner();
  const t = target(o);
  await checkTarget(runner, t);
  const findings: Finding[] = await analyzeForeign(runner, t, flowsOf(intent));
  if (o.json) o.out(JSON.stringify({ format_version: "1.0", target: { netns: t }, findings }, null, 2) + "\n");
  else if (!findings.length) o.out(`No conflicts: no other firewall in ${targetName(t)} drops or clashes with bolt's traffic.\n`);
  else for (const f of findings) o.out(`${f.severity.toUpperCase()} ${f.code}: ${f.message}${f.fix ? `\n    fix: ${f.fix}` : ""}\n`);
  return EXIT.OK;
}

export async function cmdValidate(o: GlobalOpts): Promise<number> {
  const { intent, warnings } = loadIntent(o.file, o.netnsPrefix);
  if (o.json) o.out(JSON.stringify({ valid: true, files: intent.files, diagnostics: warnings }, null, 2) + "\n");
  else {
    printWarnings(o, warnings);
    o.out(`Configuration is valid: ${intent.networks.length} network(s), ${intent.endpoints.length} endpoint(s), ${intent.sysctls.length} sysctl(s) in ${intent.files.join(", ")}.\n`);
  }
  return EXIT.OK;
}

export async function cmdPlan(o: GlobalOpts & { detailedExitcode?: boolean; deep?: boolean; showCommands?: boolean; destroy?: boolean }): Promise<number> {
  const { intent, warnings } = o.destroy ? { intent: EMPTY_INTENT, warnings: [] } : loadIntent(o.file, o.netnsPrefix);
  const runner = o.runner ?? new ExecaRunner();
  const t = target(o);
  await checkTarget(runner, t);
  const state = readState(o);
  warnings.push(...(await foreignWarnings(runner, t, intent)));
  if (state.pendingJournal) warnings.push({ severity: "warning", message: `an interrupted apply left a journal for ${targetName(t)}: the next \`bolt apply\` (or \`bolt rollback\`) repairs it first` });
  const plan = await makePlan({ intent, runner, target: t, registry: RECONCILERS, leases: state.leases, originals: state.originals, deep: o.deep || state.pendingJournal, destroy: o.destroy });
  const diags = [...warnings, ...plan.diagnostics];
  if (diags.some((d) => d.severity === "error")) throw new BoltError(renderDiagnostics(diags.filter((d) => d.severity === "error")), diags);
  if (o.json) o.out(JSON.stringify(planJson(plan, diags), null, 2) + "\n");
  else {
    printWarnings(o, diags);
    o.out(renderPlanText(plan, { color: !!process.stdout.isTTY, showCommands: o.showCommands }));
  }
  // A pending journal is work for the next apply (it rolls back first) even when the shallow diff is empty.
  return o.detailedExitcode && (plan.changes.length || state.pendingJournal) ? EXIT.CHANGES : EXIT.OK;
}

/** apply and destroy: lock, repair an interrupted apply, plan, apply, commit bookkeeping. */
export async function cmdApply(o: GlobalOpts & { destroy?: boolean; showCommands?: boolean; deep?: boolean }): Promise<number> {
  const { intent, warnings } = o.destroy ? { intent: EMPTY_INTENT, warnings: [] } : loadIntent(o.file, o.netnsPrefix);
  const runner = o.runner ?? new ExecaRunner();
  const t = target(o);
  await checkTarget(runner, t);
  const store = new StateStore(o.stateDir);
  const lock = new TargetLock(o.stateDir, targetKey(t));
  try {
    await lock.acquire(o.lockTimeout * 1000);
    const rec = await recoverJournal(store, runner, RECONCILERS, t);
    if (rec) {
      if (rec.problems.length) throw new BoltError(`an interrupted apply (pid ${rec.pid}, ${rec.startedAt}) could not be rolled back: ${rec.problems.join("; ")}`);
      o.log.warn({ pid: rec.pid, startedAt: rec.startedAt, undone: rec.undone }, "rolled back an interrupted apply before continuing");
    }
    const originals = store.originals(t);
    warnings.push(...(await foreignWarnings(runner, t, intent)));
    const plan = await makePlan({ intent, runner, target: t, registry: RECONCILERS, leases: store.leases(t), originals, destroy: o.destroy, deep: o.deep });
    const diags = [...warnings, ...plan.diagnostics];
    if (diags.some((d) => d.severity === "error")) throw new BoltError(renderDiagnostics(diags.filter((d) => d.severity === "error")), diags);
    if (o.json) o.out(JSON.stringify(planJson(plan, diags), null, 2) + "\n");
    else {
      printWarnings(o, diags);
      o.out(renderPlanText(plan, { color: !!process.stdout.isTTY, showCommands: o.showCommands }));
    }
    if (!plan.changes.length) return EXIT.OK;
    const result = await applyPlan(plan, {
      runner,
      registry: RECONCILERS,
      journal: store,
      intent,
      originals,
      log: (event, fields) => o.log.info(fields, event),
    });
    commit(store, plan, o.destroy ? "destroy" : "apply");
    o.log.info({ changes: result.applied, ops: result.ops, processes: result.processes, ms: Math.round(result.durationMs) }, "apply.done");
    if (!o.json) o.out(`\n${o.destroy ? "Destroy" : "Apply"} complete! ${summaryLine(plan.changes).replace(/^Plan: /, "Resources: ").replace(/ to /g, " ").replace("add", "added").replace("change,", "changed,").replace("replace,", "replaced,").replace("destroy.", "destroyed.")}\n`);
    return EXIT.OK;
  } catch (e) {
    try {
      store.addHistory(t, o.destroy ? "destroy" : "apply", "", `failed: ${(e as Error).message.split("\n")[0]}`);
    } catch {
      /* history is best effort on the failure path */
    }
    throw e;
  } finally {
    lock.release();
    store.close();
  }
}

function commit(store: StateStore, plan: Plan, command: string) {
  const rec = new Map(RECONCILERS.map((r) => [r.kind, r]));
  store.transaction(() => {
    for (const c of plan.changes) rec.get(c.kind)!.commit?.(c, store, plan.target);
    store.addHistory(plan.target, command, summaryLine(plan.changes), "applied");
  });
}

export async function cmdShow(o: GlobalOpts & { deep?: boolean }): Promise<number> {
  const runner = o.runner ?? new ExecaRunner();
  const t = target(o);
  await checkTarget(runner, t);
  const state = readState(o);
  const snap = await readLive(runner, t, RECONCILERS, { deep: !!o.deep, intent: EMPTY_INTENT, originals: state.originals });
  const owned = [...snap.live.values()].filter((r) => r.owned);
  if (o.json) o.out(JSON.stringify({ format_version: "1.0", target: { netns: t }, resources: owned.map((r) => ({ address: r.id, kind: r.kind, name: r.name, spec: r.spec, ...(r.data?.counters ? { counters: r.data.counters } : {}) })) }, null, 2) + "\n");
  else o.out(renderShow(owned, t));
  return EXIT.OK;
}

export async function cmdRollback(o: GlobalOpts): Promise<number> {
  const runner = o.runner ?? new ExecaRunner();
  const t = target(o);
  await checkTarget(runner, t);
  const store = new StateStore(o.stateDir);
  const lock = new TargetLock(o.stateDir, targetKey(t));
  try {
    await lock.acquire(o.lockTimeout * 1000);
    const rec = await recoverJournal(store, runner, RECONCILERS, t);
    if (!rec) {
      o.out(`Nothing to roll back in ${targetName(t)}: no interrupted apply.\n`);
      return EXIT.OK;
    }
    if (rec.problems.length) throw new BoltError(`rollback incomplete: ${rec.problems.join("; ")}`);
    store.addHistory(t, "rollback", `undid ${rec.undone} op(s) of the apply started ${rec.startedAt} by pid ${rec.pid}`, "applied");
    o.out(`Rolled back the interrupted apply started ${rec.startedAt} (pid ${rec.pid}): ${targetName(t)} is as it was before it.\n`);
    return EXIT.OK;
  } finally {
    lock.release();
    store.close();
  }
}
