import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { BoltError, ConfigError, EXIT } from "../core/diagnostics.js";
import type { Diagnostic } from "../core/diagnostics.js";
import { LiveReader } from "../core/live-reader.js";
import { MASS_DESTROY_HINT, makePlan, massDestroy, readLive } from "../core/plan.js";
import type { Plan } from "../core/plan.js";
import type { PlanMemo } from "../core/plan-memo.js";
import { journalCreates, recoverJournal } from "../core/recover.js";
import { emptyIntent, fragment } from "../core/intent.js";
import type { Intent } from "../core/intent.js";
import { NETWORKS } from "../../reconcilers/network/intent.js";
import { NFT } from "../../reconcilers/nft/intent.js";
import { ProcessRunner } from "../exec/process-runner.js";
import type { CommandRunner, Ns } from "../exec/runner.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import { meshStoreInput } from "../../reconcilers/wireguard/store-input.js";
import { TargetLock } from "../state/lock.js";
import { readRunJournal, readRunOriginals } from "../state/run-copy.js";
import { StateStore, targetKey } from "../state/store.js";
import { loadIntent } from "./config.js";
import { reconcile } from "../core/reconcile.js";
import { renderPlanMarkdown } from "./render-markdown.js";
import { dropDigestEqual, offlineInputs, readHostState } from "../core/host-state.js";
import { toSavedPlan, writeSavedPlan } from "../core/saved-plan.js";
import type { ConfirmOptions } from "../core/reconcile.js";
import { planJson } from "./render-json.js";
import { renderDiagnostics, renderPlanText, renderShow, summaryLine, targetName } from "./render-text.js";
import { analyzeForeign } from "../../reconcilers/nft/analyze.js";
import { viaDaemon } from "../daemon/client.js";
import { cliLoader } from "../daemon/runtime-endpoints.js";
import type { ConfigLoader } from "../daemon/runtime-endpoints.js";
import type { BoltFlows, Finding } from "../../reconcilers/nft/analyze.js";
import { progressSink } from "./progress.js";
import type { ProgressMode } from "./progress.js";

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
  /** false (--no-daemon): never go through a daemon's API (src/daemon/client.ts) */
  daemon?: boolean;
  /** how plan/apply read the config; default: the files plus the target's runtime endpoints */
  loadConfig?: ConfigLoader;
  /** the daemon's memo of its last no-op plan (core/plan-memo.ts) */
  planMemo?: PlanMemo;
  /** colour the text plan; default: when stdout is a terminal (the daemon passes the CLI's) */
  color?: boolean;
}

const EMPTY_INTENT: Intent = emptyIntent();

export function target(o: GlobalOpts): Ns {
  return o.netns ?? null;
}

export async function checkTarget(runner: CommandRunner, t: Ns, reader?: LiveReader): Promise<void> {
  if (t === null) return;
  const list = reader
    ? await reader.ipJson<{ name: string }[]>(["netns", "list"], null).catch(() => [])
    : await runner.run(["ip", "-j", "netns", "list"]).then((r) => (r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as { name: string }[]) : []));
  const names = list.map((n) => n.name);
  if (!names.includes(t)) throw new BoltError(`network namespace "${t}" does not exist (create it with \`ip netns add ${t}\`; bolt never creates its target)`);
}

/** Starts the reads every plan makes (each kind's readScope); the reconcilers get the same (memoized) answers. */
function prefetch(runner: CommandRunner, t: Ns): LiveReader {
  const reader = new LiveReader(runner, t);
  const quiet = (p: Promise<unknown>) => void p.catch(() => {});
  quiet(reader.ipJson(["netns", "list"], null));
  for (const k of REGISTRY.kinds) {
    for (const r of k.readScope ?? []) {
      const ns = r.ns === null ? null : t;
      quiet("ip" in r ? reader.ipJson(r.ip, ns) : reader.exec(r.exec, ns));
    }
  }
  return reader;
}

export function printWarnings(o: GlobalOpts, diags: Diagnostic[]) {
  const warn = diags.filter((d) => d.severity === "warning");
  if (warn.length && !o.json) o.err(renderDiagnostics(warn) + "\n");
}

/** Opens the store read-only for planning: a plan never writes, not even a new state dir. */
export function readState(o: GlobalOpts): { leases: Map<string, string>; originals: Map<string, string>; pendingJournal: boolean; halfMade?: Set<string> } {
  const t = target(o);
  const pending = (j: { payload: string } | undefined) => ({ pendingJournal: !!j, halfMade: new Set(journalCreates(j?.payload)) });
  // No store yet (never made, or lost): nothing leased; the run dir's copies say what a lost one
  // recorded. A damaged one is an error (planning without its leases would move addresses).
  if (!existsSync(join(o.stateDir, "bolt.db")))
    return { leases: new Map(), originals: readRunOriginals(targetKey(t)), ...pending(readRunJournal(targetKey(t))) };
  const store = StateStore.openReadOnly(o.stateDir);
  try {
    return { leases: store.leases(t), originals: store.originals(t), ...pending(store.journal(t)) };
  } finally {
    store.close();
  }
}

function flowsOf(intent: Intent): BoltFlows {
  const networks = fragment(intent, NETWORKS);
  const nft = fragment(intent, NFT);
  return {
    bridges: networks.map((n) => n.bridge),
    subnets: networks.map((n) => n.subnet),
    forwards: networks.some((n) => n.internet) || !!nft?.portForwards.length,
    hostPorts: (nft?.portForwards ?? []).map((p) => ({ protocol: p.protocol, port: p.hostPort })),
    resolving: !!nft?.dockerResolution,
  };
}

/** `[firewall] mode = "intelligent"` or docker_conflict_resolution: foreign rulesets analysed in plan. */
export async function foreignWarnings(runner: CommandRunner, t: Ns, intent: Intent): Promise<Diagnostic[]> {
  const nft = fragment(intent, NFT);
  if (!nft?.analyzeForeign && !nft?.dockerResolution) return [];
  const findings = await analyzeForeign(runner, t, flowsOf(intent));
  return findings.filter((f) => f.severity !== "info").map((f) => ({ severity: "warning" as const, message: `firewall analysis: ${f.message}`, hint: f.fix }));
}

export async function cmdFirewallAnalyze(o: GlobalOpts): Promise<number> {
  const { intent } = o.file.length ? loadIntent(o.file, o.netnsPrefix) : { intent: EMPTY_INTENT };
  const runner = o.runner ?? new ProcessRunner();
  const t = target(o);
  await checkTarget(runner, t);
  const findings: Finding[] = await analyzeForeign(runner, t, flowsOf(intent));
  if (o.json) o.out(JSON.stringify({ format_version: "1.0", target: { netns: t }, findings }, null, 2) + "\n");
  else if (!findings.length) o.out(`No conflicts: no other firewall in ${targetName(t)} drops or clashes with bolt's traffic.\n`);
  else for (const f of findings) o.out(`${f.severity.toUpperCase()} ${f.code}: ${f.message}${f.fix ? `\n    fix: ${f.fix}` : ""}\n`);
  return EXIT.OK;
}

export async function cmdValidate(o: GlobalOpts): Promise<number> {
  const { intent, warnings } = loadIntent(o.file, o.netnsPrefix, { offline: true });
  // Kinds' checks with local tools (bird -p): no kernel read, nothing started.
  const runner = o.runner ?? new ProcessRunner();
  const checks = (await Promise.all(REGISTRY.kinds.map((k) => k.validateTools?.(intent, runner) ?? Promise.resolve([])))).flat();
  warnings.push(...checks);
  if (checks.some((d) => d.severity === "error")) throw new ConfigError(warnings);
  if (o.json) o.out(JSON.stringify({ valid: true, files: intent.files, diagnostics: warnings }, null, 2) + "\n");
  else {
    printWarnings(o, warnings);
    const counts = REGISTRY.kinds.flatMap((k) => (k.intent?.describe ? [k.intent.describe(intent.kinds[k.kind])] : [])).filter(Boolean);
    o.out(`Configuration is valid: ${counts.join(", ")} in ${intent.files.join(", ")}.\n`);
  }
  return EXIT.OK;
}

export async function cmdPlan(
  o: GlobalOpts & {
    detailedExitcode?: boolean;
    deep?: boolean;
    showCommands?: boolean;
    destroy?: boolean;
    format?: string;
    outFile?: string;
    stateFile?: string;
  },
): Promise<number> {
  const simple = !o.outFile && o.stateFile === undefined && !o.destroy && (o.format === undefined || o.format === "text" || o.format === "json");
  const routed = simple
    ? await viaDaemon(o, "plan", {
        json: o.json || o.format === "json",
        deep: o.deep,
        show_commands: o.showCommands,
        detailed_exitcode: o.detailedExitcode,
        color: !!process.stdout.isTTY,
      })
    : undefined;
  if (routed !== undefined) return routed;
  // The memo's clock before the first read: a plan whose reads an event overtook is not kept.
  const started = o.stateFile === undefined ? o.planMemo?.begin() : undefined;
  // The kernel reads depend on nothing in the config: start them before loading it.
  // (The warm daemon's reads are cached, and a memo hit reads nothing: no prefetch to parse for nothing.)
  const reader =
    o.stateFile !== undefined
      ? undefined
      : o.planMemo
        ? new LiveReader(o.runner ?? new ProcessRunner(), target(o))
        : prefetch(o.runner ?? new ProcessRunner(), target(o));
  // A mesh on an etcd store is read first (offline plans read none: they say the store is not read).
  const storeWarnings: Diagnostic[] = [];
  const external =
    o.destroy || o.stateFile !== undefined
      ? undefined
      : await meshStoreInput(o.file, { write: false, stateDir: o.stateDir, target: target(o), warnings: storeWarnings });
  const load = o.loadConfig ?? cliLoader(o.stateDir, target(o));
  const loadedCfg = o.destroy ? { intent: EMPTY_INTENT, warnings: [] } : load(o.file, o.netnsPrefix, { offline: o.stateFile !== undefined, external });
  const { intent } = loadedCfg;
  const warnings = [...loadedCfg.warnings, ...storeWarnings];
  // --state FILE: plan against an exported host state, with no kernel access (CI).
  const host = o.stateFile !== undefined ? readHostState(o.stateFile, o.netns ?? null) : undefined;
  const t = host ? (o.netns ?? host.target) : target(o);
  const offline = host ? offlineInputs(host, t, REGISTRY, intent) : undefined;
  const runner = offline?.runner ?? reader?.runner ?? o.runner ?? new ProcessRunner();
  if (!offline) await checkTarget(runner, t, reader);
  const state = offline ? { leases: offline.leases, originals: offline.originals, pendingJournal: false } : readState(o);
  if (!offline) warnings.push(...(await foreignWarnings(runner, t, intent)));
  if (state.pendingJournal)
    warnings.push({
      severity: "warning",
      message: `an interrupted apply left a journal for ${targetName(t)}: the next \`bolt apply\` (or \`bolt rollback\`) repairs it first`,
    });
  const made = await makePlan({
    intent,
    runner,
    target: t,
    registry: REGISTRY,
    leases: state.leases,
    originals: state.originals,
    deep: o.deep || state.pendingJournal,
    halfMade: state.halfMade,
    destroy: o.destroy,
    snapshot: offline?.snapshot,
    reader: offline ? undefined : reader,
    memo: o.planMemo && !offline ? { memo: o.planMemo, started } : undefined,
  });
  const plan = offline ? dropDigestEqual(made) : made;
  const refused = o.destroy ? undefined : massDestroy(plan);
  const diags = [
    ...warnings,
    ...plan.diagnostics,
    ...(refused ? [{ severity: "warning" as const, message: `\`bolt apply\` will refuse this plan: ${refused}`, hint: MASS_DESTROY_HINT }] : []),
  ];
  if (diags.some((d) => d.severity === "error")) throw new BoltError(renderDiagnostics(diags.filter((d) => d.severity === "error")), diags);
  if (o.outFile)
    writeSavedPlan(
      o.outFile,
      toSavedPlan(plan, o.destroy ? emptyIntent(intent.files) : intent, { deep: !!(o.deep || state.pendingJournal), destroy: !!o.destroy }),
    );
  const format = o.format ?? (o.json ? "json" : "text");
  if (format === "json") o.out(JSON.stringify(planJson(plan, diags), null, 2) + "\n");
  else if (format === "markdown")
    o.out(renderPlanMarkdown(plan, diags, { showCommands: o.showCommands, state: host ? { host: host.host, exportedAt: host.exported_at } : undefined }));
  else {
    printWarnings(o, diags);
    o.out(renderPlanText(plan, { color: o.color ?? !!process.stdout.isTTY, showCommands: o.showCommands }));
  }
  if (o.outFile && format === "text")
    o.out(`\nSaved the plan to ${o.outFile}: \`bolt apply ${o.outFile}\` applies exactly these changes, or refuses if ${targetName(t)} changed meanwhile.\n`);
  // A pending journal is work for the next apply (it rolls back first) even when the shallow diff is empty.
  return o.detailedExitcode && (plan.changes.length || state.pendingJournal) ? EXIT.CHANGES : EXIT.OK;
}

/**
 * One writer per target: check it exists, open the store and hold the target's lock while
 * `fn` runs. A failure of `command` is recorded in the history (best effort).
 */
export async function withTarget<T>(
  o: GlobalOpts,
  t: Ns,
  command: string | undefined,
  fn: (s: { runner: CommandRunner; store: StateStore }) => Promise<T>,
): Promise<T> {
  const runner = o.runner ?? new ProcessRunner();
  await checkTarget(runner, t);
  const store = new StateStore(o.stateDir);
  const lock = new TargetLock(targetKey(t));
  try {
    await lock.acquire(o.lockTimeout * 1000);
    return await fn({ runner, store });
  } catch (e) {
    if (command) {
      try {
        store.addHistory(t, command, "", `failed: ${(e as Error).message.split("\n")[0]}`);
      } catch {
        /* history is best effort on the failure path */
      }
    }
    throw e;
  } finally {
    lock.release();
    store.close();
  }
}

/** Shows a plan the way plan and apply do: JSON, or warnings and the text plan. */
export function planPrinter(o: GlobalOpts, showCommands?: boolean): (plan: Plan, diags: Diagnostic[]) => void {
  return (plan, diags) => {
    if (o.json) o.out(JSON.stringify(planJson(plan, diags), null, 2) + "\n");
    else {
      printWarnings(o, diags);
      o.out(renderPlanText(plan, { color: o.color ?? !!process.stdout.isTTY, showCommands }));
    }
  };
}

/** "Resources: 2 added, 0 changed, 0 replaced, 1 destroyed." */
export function resourcesLine(changes: Plan["changes"]): string {
  return summaryLine(changes)
    .replace(/^Plan: /, "Resources: ")
    .replace(/ to /g, " ")
    .replace("add", "added")
    .replace("change,", "changed,")
    .replace("replace,", "replaced,")
    .replace("destroy.", "destroyed.");
}

/** apply and destroy: lock, repair an interrupted apply, plan, apply, commit bookkeeping. */
export async function cmdApply(
  o: GlobalOpts & { destroy?: boolean; showCommands?: boolean; deep?: boolean; confirm?: ConfirmOptions; allowDestroy?: boolean; progress?: ProgressMode },
): Promise<number> {
  if (!o.destroy && !o.confirm) {
    const routed = await viaDaemon(o, "apply", {
      json: o.json,
      deep: o.deep,
      show_commands: o.showCommands,
      allow_destroy: o.allowDestroy,
      color: !!process.stdout.isTTY,
    });
    if (routed !== undefined) return routed;
  }
  // A mesh on an etcd store: this host publishes its request, then reads the mesh.
  const storeWarnings: Diagnostic[] = [];
  const external = o.destroy
    ? undefined
    : await meshStoreInput(o.file, { write: true, stateDir: o.stateDir, target: target(o), allowDestroy: o.allowDestroy, warnings: storeWarnings });
  const loadedCfg = o.destroy
    ? { intent: EMPTY_INTENT, warnings: [] }
    : (o.loadConfig ?? cliLoader(o.stateDir, target(o)))(o.file, o.netnsPrefix, { external });
  const { intent } = loadedCfg;
  const warnings = [...loadedCfg.warnings, ...storeWarnings];
  const t = target(o);
  const command = o.destroy ? "destroy" : "apply";
  return withTarget(o, t, command, async ({ runner, store }) => {
    const progress = progressSink(o.progress ?? "auto", command, process.stderr, { json: o.json });
    const { plan, result } = await reconcile({
      registry: REGISTRY,
      runner,
      target: t,
      store,
      intent,
      warnings,
      command,
      log: o.log,
      destroy: o.destroy,
      deep: o.deep,
      allowDestroy: o.allowDestroy,
      confirm: o.confirm,
      extraWarnings: () => foreignWarnings(runner, t, intent),
      onPlan: planPrinter(o, o.showCommands),
      progress: progress?.onProgress,
    }).finally(() => progress?.end());
    if (result && !o.json) o.out(`\n${o.destroy ? "Destroy" : "Apply"} complete! ${resourcesLine(plan.changes)}\n`);
    return EXIT.OK;
  });
}

export async function cmdShow(o: GlobalOpts & { deep?: boolean }): Promise<number> {
  const routed = await viaDaemon(o, "show", { json: o.json, deep: o.deep });
  if (routed !== undefined) return routed;
  const runner = o.runner ?? new ProcessRunner();
  const t = target(o);
  await checkTarget(runner, t);
  const state = readState(o);
  const snap = await readLive(runner, t, REGISTRY, { deep: !!o.deep, intent: EMPTY_INTENT, originals: state.originals });
  const owned = [...snap.live.values()].filter((r) => r.owned);
  if (o.json)
    o.out(
      JSON.stringify(
        {
          format_version: "1.0",
          target: { netns: t },
          resources: owned.map((r) => ({ address: r.id, kind: r.kind, name: r.name, spec: r.spec, ...(r.counters ? { counters: r.counters } : {}) })),
        },
        null,
        2,
      ) + "\n",
    );
  else o.out(renderShow(owned, t));
  return EXIT.OK;
}

export async function cmdRollback(o: GlobalOpts): Promise<number> {
  const t = target(o);
  return withTarget(o, t, undefined, async ({ runner, store }) => {
    const rec = await recoverJournal(store, runner, REGISTRY, t);
    if (!rec) {
      o.out(`Nothing to roll back in ${targetName(t)}: no interrupted apply.\n`);
      return EXIT.OK;
    }
    if (rec.problems.length) throw new BoltError(`rollback incomplete: ${rec.problems.join("; ")}`);
    store.addHistory(t, "rollback", `undid ${rec.undone} op(s) of the apply started ${rec.startedAt} by pid ${rec.pid}`, "applied");
    o.out(`Rolled back the interrupted apply started ${rec.startedAt} (pid ${rec.pid}): ${targetName(t)} is as it was before it.\n`);
    return EXIT.OK;
  });
}

/** `bolt rollback --discard-journal`: an unreadable journal is dropped (recorded in the history); the kernel is left as it is. */
export async function cmdDiscardJournal(o: GlobalOpts): Promise<number> {
  const t = target(o);
  return withTarget(o, t, undefined, async ({ store }) => {
    const row = store.journal(t);
    if (!row) {
      o.out(`No journal to discard in ${targetName(t)}.\n`);
      return EXIT.OK;
    }
    store.clearJournal(t);
    store.addHistory(t, "rollback --discard-journal", `dropped the journal of the apply started ${row.startedAt} by pid ${row.pid}`, "applied");
    o.out(
      `Dropped the journal of the apply started ${row.startedAt} (pid ${row.pid}); nothing was undone. \`bolt plan\` shows what ${targetName(t)} has now.\n`,
    );
    return EXIT.OK;
  });
}
