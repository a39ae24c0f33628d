import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Intent } from "./intent.js";
import type { CommandRunner, Ns, RunResult } from "../exec/runner.js";
import { inNetns } from "../exec/runner.js";
import { BoltError } from "./diagnostics.js";
import type { Diagnostic } from "./diagnostics.js";
import { LiveReader } from "./live-reader.js";
import type { LiveSnapshot, Plan } from "./plan.js";
import { readLive } from "./plan.js";
import type { Resource } from "./resource.js";
import type { Registry } from "./registry.js";
import { digestValue } from "./saved-plan.js";

/**
 * `bolt state export` / `bolt plan --state FILE`: a host's owned live state as the planner sees
 * it (the resources the reconcilers read, the foreign names desired objects must not take, the
 * namespaces, leases and recorded sysctl originals), plus the few raw reads plan-time conflict
 * checks make. Planning against it needs no kernel and no root: a CI runner plans a pull
 * request against production's state. Sensitive values are stored as digests only.
 */
export const STATE_FORMAT = "bolt-state";
export const STATE_VERSION = 1;

export interface HostState {
  format: typeof STATE_FORMAT;
  format_version: number;
  exported_at: string;
  host: string;
  target: Ns;
  netns: string[];
  resources: Resource[];
  foreign: Record<string, string>;
  leases: Record<string, string>;
  originals: Record<string, string>;
  /** raw read outputs for conflict checks, keyed by argv outside any namespace ("ip -j -4 route show table all") */
  reads: Record<string, RunResult>;
  /** host facts the reads learned (the kernel has WireGuard); older exports have none */
  facts?: Record<string, string>;
}

export async function exportState(
  runner: CommandRunner,
  target: Ns,
  registry: Registry,
  intent: Intent,
  store: { leases: Map<string, string>; originals: Map<string, string> },
): Promise<{ state: HostState; diagnostics: Diagnostic[] }> {
  const snap = await readLive(runner, target, registry, { deep: false, intent, originals: store.originals });
  const reads: Record<string, RunResult> = {};
  // The reads conflict checks make beyond what the resources carry, as each kind declares them.
  const argvs = new Map(registry.kinds.flatMap((k) => k.offlineReads ?? []).map((o) => [o.argv.join(" "), o]));
  await Promise.all(
    [...argvs.values()].map(async (o) => {
      const r = await runner.run(inNetns(target, o.argv));
      reads[o.argv.join(" ")] = { ...r, stdout: o.minimize && r.code === 0 ? o.minimize(r.stdout) : r.stdout };
    }),
  );
  const state: HostState = {
    format: STATE_FORMAT,
    format_version: STATE_VERSION,
    exported_at: new Date().toISOString(),
    host: hostname(),
    target,
    netns: [...snap.netns].sort(),
    resources: [...snap.live.values()].map(sanitize),
    foreign: Object.fromEntries(snap.foreign),
    leases: Object.fromEntries(store.leases),
    originals: Object.fromEntries(store.originals),
    reads,
    facts: Object.fromEntries(snap.facts),
  };
  return { state, diagnostics: snap.diagnostics };
}

function sanitize(r: Resource): Resource {
  const out: Resource = { ...r, spec: { ...r.spec } };
  for (const k of r.sensitive ?? []) if (k in out.spec) out.spec[k] = digestValue(out.spec[k]!);
  // Counters are traffic, not state.
  delete out.counters;
  return out;
}

/** An empty host: `--state none` plans a config as if nothing existed yet. */
export function emptyState(target: Ns): HostState {
  return {
    format: STATE_FORMAT,
    format_version: STATE_VERSION,
    exported_at: new Date(0).toISOString(),
    host: "",
    target,
    netns: [],
    resources: [],
    foreign: {},
    leases: {},
    originals: {},
    reads: {},
  };
}

export function readHostState(path: string, target: Ns): HostState {
  if (path === "none" || path === "empty") return emptyState(target);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new BoltError(
      `cannot read state file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (export one on the host with \`bolt state export > ${path}\`, or use --state none)`,
    );
  }
  if (!text.trim()) return emptyState(target);
  let v: Partial<HostState>;
  try {
    v = JSON.parse(text) as Partial<HostState>;
  } catch (e) {
    throw new BoltError(`${path} is not a bolt state export: ${(e as Error).message}`);
  }
  if (v?.format !== STATE_FORMAT)
    throw new BoltError(`${path} is not a bolt state export (no "format": "${STATE_FORMAT}"); make one with \`bolt state export\``);
  if (v.format_version !== STATE_VERSION)
    throw new BoltError(`${path}: state format_version ${String(v.format_version)} is not supported (this bolt reads ${STATE_VERSION})`);
  return { ...emptyState(target), ...v } as HostState;
}

/**
 * Answers the recorded reads of an exported state. A read a kind declared (offlineReads) that
 * the export lacks (`--state none`) gets the kind's answer for a host without its objects;
 * `ip -j` dumps of anything else are empty; everything else is "not available offline".
 */
export class OfflineRunner implements CommandRunner {
  constructor(
    private readonly reads: Record<string, RunResult>,
    private readonly absent: Map<string, RunResult> = new Map(),
  ) {}

  async run(argv: string[]): Promise<RunResult> {
    const bare = stripNetns(argv);
    const key = bare.join(" ");
    const r = this.reads[key] ?? this.absent.get(key);
    if (r) return r;
    if (bare[0] === "ip" && bare[1] === "-j") return { stdout: "[]", stderr: "", code: 0 };
    return { stdout: "", stderr: `offline plan: ${key} needs the host`, code: 127 };
  }
}

function stripNetns(argv: string[]): string[] {
  if (argv[0] === "ip" && argv[1] === "-n") return ["ip", ...argv.slice(3)];
  if (argv[0] === "ip" && argv[1] === "netns" && argv[2] === "exec") return argv.slice(4);
  return argv;
}

/** The planner's inputs from an exported state. */
export function offlineInputs(
  state: HostState,
  target: Ns,
  registry: Registry,
  intent?: Intent,
): { snapshot: LiveSnapshot; runner: OfflineRunner; leases: Map<string, string>; originals: Map<string, string> } {
  const absent = new Map(registry.kinds.flatMap((k) => k.offlineReads ?? []).map((o) => [o.argv.join(" "), o.absent]));
  const runner = new OfflineRunner(state.reads, absent);
  const live = new Map(state.resources.map((r) => [r.id, r]));
  // Objects the export could not know the config would name (a new sysctl key): stand-ins from their kind.
  if (intent) for (const k of registry.kinds) for (const r of k.offlineLive?.(intent) ?? []) if (!live.has(r.id)) live.set(r.id, r);
  const snapshot: LiveSnapshot = {
    live,
    foreign: new Map(Object.entries(state.foreign)),
    netns: new Set(state.netns),
    facts: new Map(Object.entries(state.facts ?? {})),
    diagnostics: [],
    reader: new LiveReader(runner, target),
  };
  return { snapshot, runner, leases: new Map(Object.entries(state.leases)), originals: new Map(Object.entries(state.originals)) };
}

/**
 * An exported state holds sensitive values as digests: an update whose only changed fields are
 * sensitive ones whose desired value digests to the stored one is no change at all.
 */
export function dropDigestEqual(plan: Plan): Plan {
  const same = (i: number) => {
    const c = plan.changes[i]!;
    if (c.action !== "update" || !c.after?.sensitive?.length) return false;
    return c.changed.every((k) => c.after!.sensitive!.includes(k) && digestValue(c.after!.spec[k] ?? "") === (c.before?.spec[k] ?? ""));
  };
  const keep = plan.changes.map((_, i) => !same(i));
  if (keep.every(Boolean)) return plan;
  const steps = plan.steps.filter((_, i) => keep[i]).map((s, j) => ({ ...s, ops: s.ops.map((o) => ({ ...o, step: j })) }));
  return { ...plan, changes: plan.changes.filter((_, i) => keep[i]), steps };
}
