// The whole pipeline in-process, for fake-kernel tests: config text → intent → plan → apply.
// Tests call these instead of the core's entry points so that the core's signatures can
// change without touching every kind test.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { loadIntent } from "../../../src/cli/config.js";
import { applyPlan } from "../../../src/core/apply.js";
import type { ApplyResult, JournalPayload, JournalSink } from "../../../src/core/apply.js";
import { makePlan } from "../../../src/core/plan.js";
import { recoverJournal } from "../../../src/core/recover.js";
import type { Plan } from "../../../src/core/plan.js";
import type { Intent } from "../../../src/core/intent.js";
import { compileRegistry } from "../../../src/core/registry.js";
import type { CommitStore, Reconciler } from "../../../src/core/resource.js";
import type { CommandRunner, Ns } from "../../../src/exec/runner.js";
import { RECONCILERS } from "../../../reconcilers/registry.js";
import { FakeKernel, FakeKernelKilled, diffSnapshots, opKey } from "./fake-kernel.js";
import type { Fault } from "./fake-kernel.js";

export { RECONCILERS };

/** What tests pass as a registry: the list of kinds (possibly with one kind modified). */
export type Registry = Reconciler[];

/** Writes config files (name → text) into a fresh directory and returns their paths. */
export function writeConfigs(files: Record<string, string>): string[] {
  const dir = mkdtempSync(join(tmpdir(), "bolt-unit-"));
  return Object.entries(files).map(([name, text]) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  });
}

/** An X25519 key pair as `wg genkey` / `wg pubkey` print them. */
export function wgKeyPair(): { priv: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const b64 = (k: { export(o: { format: "jwk" }): unknown }, f: "d" | "x") =>
    Buffer.from((k.export({ format: "jwk" }) as Record<string, string>)[f]!, "base64url").toString("base64");
  return { priv: b64(privateKey, "d"), pub: b64(publicKey, "x") };
}

/** A key file (mode 0600, as bolt requires) in a fresh directory; returns its path. */
export function writeKeyFile(name: string, key: string): string {
  const p = join(mkdtempSync(join(tmpdir(), "bolt-unit-key-")), name);
  writeFileSync(p, key + "\n", { mode: 0o600 });
  chmodSync(p, 0o600);
  return p;
}

/** A WireGuard preshared key (`wg genpsk`). */
export function wgPsk(): string {
  return randomBytes(32).toString("base64");
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
  /** keys a pending journal says its apply created */
  halfMade?: Set<string>;
}

/** The registry as the core wants it; tests may pass a modified list of kinds (e.g. one kind's undo removed). */
const registryOf = (kinds: Reconciler[] = RECONCILERS) => compileRegistry(kinds, { partial: kinds !== RECONCILERS });

export async function planIntent(intent: Intent, runner: CommandRunner, o: PlanOptions & { registry?: Reconciler[] }): Promise<Plan> {
  return makePlan({
    intent,
    runner,
    target: o.target,
    registry: registryOf(o.registry),
    leases: o.leases ?? new Map(),
    originals: o.originals ?? new Map(),
    destroy: o.destroy,
    deep: o.deep,
    halfMade: o.halfMade,
  });
}

export const memoryJournal = (): JournalSink & { payloads: string[] } => {
  const payloads: string[] = [];
  return { payloads, writeJournal: (_t, p) => void payloads.push(p), clearJournal: () => {} };
};

export interface ApplyIntentOptions {
  originals?: Map<string, string>;
  journal?: JournalSink;
  registry?: Reconciler[];
  /** apply's progress events ("apply.failed", "rollback.start", "rollback.done", …) */
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export async function applyIntent(plan: Plan, intent: Intent, runner: CommandRunner, o: ApplyIntentOptions = {}): Promise<ApplyResult> {
  return applyPlan(plan, {
    runner,
    registry: registryOf(o.registry),
    journal: o.journal ?? memoryJournal(),
    intent,
    originals: o.originals ?? new Map(),
    verifyAttempts: 1,
    log: o.log,
  });
}

/**
 * What the next bolt process does with the journal a killed apply left (`bolt rollback`, or the
 * start of the next apply): undo every op that may have started, and compare with "before".
 */
export async function recoverFrom(journalPayload: string, runner: CommandRunner, target: Ns, registry?: Reconciler[]): Promise<{ problems: string[] }> {
  let cleared = false;
  const store = {
    journal: () => (cleared ? undefined : { target, pid: 0, startedAt: "", payload: journalPayload }),
    clearJournal: () => void (cleared = true),
  };
  const r = await recoverJournal(store as unknown as Parameters<typeof recoverJournal>[0], runner, registryOf(registry), target);
  return { problems: r?.problems ?? [] };
}

/** The rollback started: the fake kernel records what follows as undo writes. */
export const ROLLBACK_EVENT = "rollback.start";

/** The journal payload format (what started, with its undo), for the expected-undo check. */
type Line = { tool: string; ns: Ns; args: string[]; stdin?: string };

/**
 * WireGuard's runtime ops (`wgrt`: the per-target control-socket directory) are bolt's own
 * bookkeeping, idempotent and not network state: the fake keeps them apart, so the write
 * accounting leaves them out.
 */
const kernelOnly = <T extends Line & { undo: Line[] }>(ops: T[]): T[] =>
  ops.filter((o) => o.tool !== "wgrt").map((o) => ({ ...o, undo: o.undo.filter((u) => u.tool !== "wgrt") }));

export function journalStarted(payload: string): (Line & { undo: Line[] })[] {
  return kernelOnly((JSON.parse(payload) as JournalPayload).started);
}

/** Every kernel write op of a plan, in plan order. */
export function planOps(plan: Plan): (Line & { undo: Line[] })[] {
  return kernelOnly(plan.steps.flatMap((s) => s.ops));
}

/** "action id" of each change, in plan order. */
export function planChanges(plan: Plan): string[] {
  return plan.changes.map((c) => `${c.action} ${c.id}`);
}

/** A registry with one kind's reconciler replaced (mutation tests). */
export function replaceKind(kind: string, wrap: (r: Reconciler) => Reconciler, registry: Registry = RECONCILERS): Registry {
  if (!registry.some((r) => r.kind === kind)) throw new Error(`no kind ${kind} in the registry`);
  return registry.map((r) => (r.kind === kind ? wrap(r) : r));
}

/** The registry with `kind`'s ops rendered without any undo: a rollback can no longer restore them. */
export function withoutUndo(kind: string, registry: Registry = RECONCILERS): Registry {
  return replaceKind(kind, (r) => ({ ...r, render: (c, ctx) => r.render(c, ctx).map((o) => ({ ...o, undo: [] })) }), registry);
}

/** The state store's bookkeeping of one target, in memory: leases and sysctl originals. */
export class MemoryStore implements CommitStore {
  leases = new Map<string, string>();
  originals = new Map<string, string>();
  setLease(_t: Ns, _network: string, endpoint: string, ip: string): void {
    this.leases.set(endpoint, ip);
  }
  releaseLease(_t: Ns, endpoint: string): void {
    this.leases.delete(endpoint);
  }
  setOriginal(_t: Ns, key: string, value: string): void {
    this.originals.set(key, value);
  }
  dropOriginal(_t: Ns, key: string): void {
    this.originals.delete(key);
  }
  clone(): MemoryStore {
    const m = new MemoryStore();
    m.leases = new Map(this.leases);
    m.originals = new Map(this.originals);
    return m;
  }
}

/** What `bolt apply` records after a verified apply (each kind's commit). */
export function commitPlan(plan: Plan, store: CommitStore, registry: Registry = RECONCILERS): void {
  const rec = new Map(registry.map((r) => [r.kind, r]));
  for (const c of plan.changes) rec.get(c.kind)!.commit?.(c, store, plan.target);
}

// ---------------------------------------------------------------------------------------
// Kind tests on the fake kernel (test/unit/kinds): a world (kernel + store + target) before a
// change, the change (a desired intent, or destroy), and the checks every kind must pass:
// converges, re-plans empty, rolls back exactly from a failure at any write op, and the suite
// notices when a kind's undo is missing.

export interface World {
  kernel: FakeKernel;
  store: MemoryStore;
  target: Ns;
}

export interface Desired {
  intent: Intent;
  destroy?: boolean;
  /** the keys a pending journal says its apply created (a plan made before the next apply's recovery) */
  halfMade?: Set<string>;
}

export function newWorld(target: Ns, setup?: (k: FakeKernel) => void): World {
  const kernel = new FakeKernel();
  if (target !== null) kernel.addNetns(target);
  setup?.(kernel);
  return { kernel, store: new MemoryStore(), target };
}

export function cloneWorld(w: World): World {
  return { kernel: w.kernel.clone(), store: w.store.clone(), target: w.target };
}

export async function planOn(w: World, want: Desired, registry?: Registry): Promise<Plan> {
  return planIntent(want.intent, w.kernel, {
    target: w.target,
    leases: w.store.leases,
    originals: w.store.originals,
    destroy: want.destroy,
    halfMade: want.halfMade,
    registry,
  });
}

function errorsOf(plan: Plan): string[] {
  return plan.diagnostics.filter((d) => d.severity === "error").map((d) => d.message);
}

/** Plan, apply and commit on the world itself (no faults); returns the plan. */
export async function converge(w: World, want: Desired, registry?: Registry): Promise<Plan> {
  const plan = await planOn(w, want, registry);
  expect(errorsOf(plan), "the plan has errors").toEqual([]);
  await applyIntent(plan, want.intent, w.kernel, { originals: w.store.originals, registry });
  commitPlan(plan, w.store, registry);
  return plan;
}

export interface Attempt {
  plan: Plan;
  error?: unknown;
  world: World;
  /** write ops of the plan */
  total: number;
  /** the undo lines the kernel saw, and those an exact rollback runs (undo of what took effect, newest first) */
  undoRan: string[];
  undoExpected: string[];
  /** before-state → state after the attempt */
  diff: string[];
  /** a killed apply: what the recovery from its journal reported */
  recovery?: { problems: string[] };
}

const snapshots = new WeakMap<FakeKernel, ReturnType<FakeKernel["snapshot"]>>();

/**
 * One apply of `want` on a copy of `w`, with a fault; nothing of `w` changes. `plan`: a plan
 * already made on (a copy of) `w` for `want` — the same as planning again, only faster.
 */
export async function attempt(w: World, want: Desired, o: { fault?: Fault; registry?: Registry; plan?: Plan } = {}): Promise<Attempt> {
  const world = cloneWorld(w);
  const k = world.kernel;
  const plan = o.plan ?? (await planOn(world, want, o.registry));
  expect(errorsOf(plan), "the plan has errors").toEqual([]);
  k.setFault(o.fault);
  const journal = memoryJournal();
  let error: unknown;
  try {
    await applyIntent(plan, want.intent, k, {
      originals: world.store.originals,
      journal,
      registry: o.registry,
      log: (e) => e === ROLLBACK_EVENT && k.markRollback(),
    });
  } catch (e) {
    error = e;
  }
  let undoExpected = expectedUndo(k, journal.payloads);
  let recovery: Attempt["recovery"];
  if (error instanceof FakeKernelKilled) {
    // The next bolt process finds the journal: it undoes every op that may have started.
    k.markRollback();
    const payload = journal.payloads[journal.payloads.length - 1]!;
    recovery = await recoverFrom(payload, k, world.target, o.registry);
    undoExpected = [...journalStarted(payload)].reverse().flatMap((op) => op.undo.map((u) => opKey(u)));
  }
  if (!snapshots.has(w.kernel)) snapshots.set(w.kernel, w.kernel.snapshot());
  return {
    plan,
    error,
    world,
    total: planOps(plan).length,
    undoRan: k.rollbackWrites().map(opKey),
    undoExpected,
    diff: diffSnapshots(snapshots.get(w.kernel), k.snapshot()),
    recovery,
  };
}

/**
 * What an exact rollback writes: the undo lines of every op that took effect — as bolt can know
 * it: ip lines before the failing one, exec'd commands before the failing one, and every clause
 * of a failed `wg set` (wg does not say which clause failed) — newest first.
 */
function expectedUndo(k: FakeKernel, payloads: string[]): string[] {
  if (!payloads.length) return [];
  const started = journalStarted(payloads[payloads.length - 1]!);
  const lastWave = started.slice(payloads.length > 1 ? journalStarted(payloads[payloads.length - 2]!).length : 0);
  const forward = k.forwardWrites();
  const failed = forward.find((w) => !w.ok);
  const took = new Map<string, number>();
  for (const w of forward) if (w.ok) took.set(opKey(w), (took.get(opKey(w)) ?? 0) + 1);
  // A failed `wg set`, or an `ip -batch` that died on an argument (exit 255, no "Command failed"):
  // bolt cannot know which of that process's ops took effect, so all of them count as done.
  const wholeBatch = failed && (failed.tool === "wg" || (failed.tool === "ip" && failed.fatal));
  const done = started.filter((op) => {
    if (wholeBatch && op.tool === failed!.tool && op.ns === failed!.ns && lastWave.includes(op)) return true;
    const n = took.get(opKey(op)) ?? 0;
    if (n) took.set(opKey(op), n - 1);
    return n > 0;
  });
  return [...done].reverse().flatMap((op) => op.undo.map((u) => opKey(u)));
}

/**
 * The undo lines that ran are the expected ones, in order; after them only retries of those
 * lines (the rollback tries lines again one by one when a batch failed: an undo line can depend
 * on a later one; for exec'd batches every line of a failed batch is retried). An undo batch that
 * ip aborted (an argument it could not resolve) skips its remaining lines until the retries: then
 * every expected line must have been tried, and nothing else.
 */
export function undoMatches(a: Attempt): boolean {
  const writes = a.world.kernel.rollbackWrites();
  const ran = writes.map(opKey);
  if (writes.some((w) => w.fatal)) return a.undoExpected.every((k) => ran.includes(k)) && ran.every((k) => a.undoExpected.includes(k));
  if (JSON.stringify(ran.slice(0, a.undoExpected.length)) !== JSON.stringify(a.undoExpected)) return false;
  const first = new Set(a.undoExpected);
  return ran.slice(a.undoExpected.length).every((k) => first.has(k));
}

export interface TransitionSpec {
  /** the kind this transition exercises: it must have a change in the plan; the mutation guard strips its undo */
  kind: string;
  /** the world before the change (built once; every attempt works on a copy) */
  before: () => Promise<World> | World;
  /** the desired state after */
  to: () => Desired;
  /** the plan's changes, "action id" in plan order */
  changes?: string[];
  /** assertions on the kernel after a successful apply */
  after?: (k: FakeKernel, plan: Plan) => void;
  /**
   * Failure points known not to roll back exactly — a reconciler bug, with its description:
   * "fail@N" (write op N fails), "ignore@N" (op N silently not applied, so a later op or verify
   * fails) or "kill@N" (bolt killed at op N, then recovered from the journal).
   */
  knownBad?: Record<string, string>;
}

/**
 * Registers the tests of one transition (create, update, delete…) of a kind:
 *  1. it converges on the fake and a re-plan is empty;
 *  2. a failure at each write op N (1..total) throws an ApplyError, leaves the kernel exactly as
 *     before, and the undo lines that ran are exactly the inverses of what took effect, newest first;
 *  3. each op silently not applied (the tool said yes) that a later op or verify notices makes
 *     the apply fail and roll back exactly;
 *  4. bolt killed at each write op N: the next process's recovery from the journal (undo of every
 *     op that may have started, newest first) leaves the kernel exactly as before;
 *  5. mutation guard: with the kind's undo stripped, some failure of 2 or 3 leaves the kernel changed.
 */
export function describeTransition(title: string, spec: TransitionSpec): void {
  let w: World;
  let to: Desired;
  beforeAll(async () => {
    w = await spec.before();
    to = spec.to();
  });

  it(`${title}: converges, and a re-plan is empty`, async () => {
    const world = cloneWorld(w);
    const want = to;
    const plan = await planOn(world, want);
    expect(errorsOf(plan)).toEqual([]);
    if (spec.changes) expect(planChanges(plan)).toEqual(spec.changes);
    expect(
      plan.changes.some((c) => c.kind === spec.kind),
      `the plan changes no ${spec.kind}`,
    ).toBe(true);
    await applyIntent(plan, want.intent, world.kernel, { originals: world.store.originals });
    // every op of the plan reached the kernel as exactly one write op, and none failed
    expect(world.kernel.forwardWrites().map(opKey).sort()).toEqual(planOps(plan).map(opKey).sort());
    expect(world.kernel.forwardWrites().filter((x) => !x.ok)).toEqual([]);
    commitPlan(plan, world.store);
    spec.after?.(world.kernel, plan);
    const again = await planOn(world, want);
    expect(planChanges(again)).toEqual([]);
    expect(errorsOf(again)).toEqual([]);
    expect(world.kernel.unknown).toEqual([]);
  });

  /** One attempt per write op: the op fails ("fail"), is silently not applied ("ignore"), or bolt is killed there ("kill"). */
  const baselines = new Map<Registry | undefined, Attempt>();
  /** The apply without a fault (its plan is reused: planning again on a copy of `w` gives the same). */
  const baseline = async (registry?: Registry) => {
    let b = baselines.get(registry);
    if (!b) {
      b = await attempt(w, to, { registry });
      expect(b.error).toBeUndefined();
      baselines.set(registry, b);
    }
    return b;
  };
  const each = async (effect: "fail" | "ignore" | "kill", registry?: Registry, until?: (a: Attempt) => boolean) => {
    const first = await baseline(registry);
    const out: { point: string; a: Attempt }[] = [];
    for (let n = 1; n <= first.total; n++) {
      const a = await attempt(w, to, { fault: { at: n, effect }, registry, plan: first.plan });
      // an op whose loss nothing can see (a link attribute bolt does not read back) is no verify failure
      if (effect !== "ignore" || a.error !== undefined) out.push({ point: `${effect}@${n}`, a });
      if (until?.(a)) break;
    }
    return out;
  };
  const problemsOf = ({ point, a }: { point: string; a: Attempt }): string[] => {
    const p: string[] = [];
    const e = a.error as Error | undefined;
    if (point.startsWith("kill")) {
      if (!(e instanceof FakeKernelKilled)) p.push(`${point}: the apply was not killed (${String(e)})`);
      else if (a.recovery?.problems.length) p.push(`${point}: the recovery reports problems: ${a.recovery.problems.join("; ")}`);
    } else if (e?.name !== "ApplyError") p.push(`${point}: no ApplyError (${String(e)})`);
    if (a.diff.length) p.push(`${point}: the kernel differs after rollback: ${a.diff.join("; ")}`);
    if (!undoMatches(a))
      p.push(`${point}: undo ran ${JSON.stringify(a.undoRan)}, expected ${JSON.stringify(a.undoExpected)} (then retries of lines that failed)`);
    if (a.world.kernel.unknown.length) p.push(`${point}: the fake did not understand: ${a.world.kernel.unknown.join("; ")}`);
    // the fault hit op N itself, after ops 1..N-1 went through
    const n = Number(point.split("@")[1]);
    const fw = a.world.kernel.forwardWrites();
    if (fw[n - 1]?.injected !== point.split("@")[0] || fw.slice(0, n - 1).some((x) => !x.ok))
      p.push(`${point}: the fault did not hit write op ${n} after ${n - 1} successful ones`);
    return p;
  };
  const bad = spec.knownBad ?? {};
  const check = async (effect: "fail" | "ignore" | "kill") => {
    const attempts = await each(effect);
    if (effect === "fail") expect(attempts.length).toBeGreaterThan(0);
    expect(attempts.filter((x) => !(x.point in bad)).flatMap(problemsOf)).toEqual([]);
    // Known reconciler bugs are pinned: exactly those points leave the kernel changed.
    const knownHere = Object.keys(bad).filter((k) => k.startsWith(effect + "@"));
    if (knownHere.length)
      expect(
        attempts
          .filter((x) => x.a.diff.length)
          .map((x) => x.point)
          .sort(),
      ).toEqual(knownHere.sort());
  };

  it(`${title}: a failure at each write op rolls back exactly`, () => check("fail"));
  it(`${title}: each op lost without an error fails the apply (a later op or verify) and rolls back exactly`, () => check("ignore"));
  it(`${title}: bolt killed at each write op: the recovery from the journal restores exactly`, () => check("kill"));

  if (Object.keys(bad).length) {
    const byWhy = new Map<string, string[]>();
    for (const [point, why] of Object.entries(bad)) byWhy.set(why, [...(byWhy.get(why) ?? []), point]);
    it.fails(`${title}: KNOWN BUG — ${[...byWhy].map(([why, points]) => `${why} (${points.join(", ")})`).join("; ")}`, async () => {
      const attempts = [...(await each("fail")), ...(await each("ignore")), ...(await each("kill"))];
      expect(attempts.flatMap(problemsOf)).toEqual([]);
    });
  }

  it(`${title}: mutation guard — without ${spec.kind}'s undo, some failure leaves the kernel changed`, async () => {
    const registry = withoutUndo(spec.kind);
    const changed = (a: Attempt) => a.diff.length > 0;
    let attempts = await each("fail", registry, changed);
    if (!attempts.some((x) => changed(x.a))) attempts = await each("ignore", registry, changed);
    expect(
      attempts.some((x) => changed(x.a)),
      "no failure point needs this kind's undo",
    ).toBe(true);
  });
}
