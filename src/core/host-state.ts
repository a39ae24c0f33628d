import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Intent } from "../config/model.js";
import type { CommandRunner, Ns, RunResult } from "../exec/runner.js";
import { inNetns } from "../exec/runner.js";
import { BoltError } from "./diagnostics.js";
import type { Diagnostic } from "./diagnostics.js";
import { LiveReader } from "./live-reader.js";
import type { LiveSnapshot, Plan } from "./plan.js";
import { readLive } from "./plan.js";
import type { Reconciler, Resource } from "./resource.js";
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
}

/** Reads conflict checks make beyond what the resources carry (network: routes and owned links; nft: bolt's table). */
const CONFLICT_READS: string[][] = [
  ["ip", "-j", "-4", "route", "show", "table", "all"],
  ["ip", "-j", "-d", "link", "show"],
  ["nft", "-j", "list", "table", "inet", "bolt"],
];

export async function exportState(
  runner: CommandRunner,
  target: Ns,
  registry: Reconciler[],
  intent: Intent,
  store: { leases: Map<string, string>; originals: Map<string, string> },
): Promise<{ state: HostState; diagnostics: Diagnostic[] }> {
  const snap = await readLive(runner, target, registry, { deep: false, intent, originals: store.originals });
  const reads: Record<string, RunResult> = {};
  await Promise.all(
    CONFLICT_READS.map(async (argv) => {
      const r = await runner.run(inNetns(target, argv));
      reads[argv.join(" ")] = { ...r, stdout: argv[3] === "link" && r.code === 0 ? minimalLinks(r.stdout) : r.stdout };
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
  };
  return { state, diagnostics: snap.diagnostics };
}

/** Link names and ownership aliases are all a conflict check needs of `ip -d link show` (no MACs, no stats). */
function minimalLinks(stdout: string): string {
  const links = (stdout.trim() ? JSON.parse(stdout) : []) as { ifname: string; ifalias?: string }[];
  return JSON.stringify(links.map((l) => (l.ifalias ? { ifname: l.ifname, ifalias: l.ifalias } : { ifname: l.ifname })));
}

function sanitize(r: Resource): Resource {
  const out: Resource = { ...r, spec: { ...r.spec } };
  for (const k of r.sensitive ?? []) if (k in out.spec) out.spec[k] = digestValue(out.spec[k]!);
  if (r.data && "counters" in r.data) {
    // Counters are traffic, not state.
    const { counters: _c, ...rest } = r.data;
    out.data = rest;
  }
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
    throw new BoltError(`cannot read state file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (export one on the host with \`bolt state export > ${path}\`, or use --state none)`);
  }
  if (!text.trim()) return emptyState(target);
  let v: Partial<HostState>;
  try {
    v = JSON.parse(text) as Partial<HostState>;
  } catch (e) {
    throw new BoltError(`${path} is not a bolt state export: ${(e as Error).message}`);
  }
  if (v?.format !== STATE_FORMAT) throw new BoltError(`${path} is not a bolt state export (no "format": "${STATE_FORMAT}"); make one with \`bolt state export\``);
  if (v.format_version !== STATE_VERSION) throw new BoltError(`${path}: state format_version ${String(v.format_version)} is not supported (this bolt reads ${STATE_VERSION})`);
  return { ...emptyState(target), ...v } as HostState;
}

/**
 * Answers the recorded reads of an exported state; everything else is "not available offline".
 * `nft -c` (the kernel parser's dry run) cannot run without the host: it is assumed to pass and
 * remembered, so the plan can say what was not checked.
 */
export class OfflineRunner implements CommandRunner {
  readonly unchecked = new Set<string>();
  constructor(private readonly reads: Record<string, RunResult>) {}

  async run(argv: string[]): Promise<RunResult> {
    const bare = stripNetns(argv);
    const key = bare.join(" ");
    const r = this.reads[key];
    if (r) return r;
    if (bare[0] === "nft" && bare[1] === "-c") {
      this.unchecked.add("the generated nft ruleset was not checked with `nft -c` (no kernel offline)");
      return { stdout: "", stderr: "", code: 0 };
    }
    if (key === "nft -j list table inet bolt") return { stdout: "", stderr: "Error: No such file or directory", code: 1 };
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
export function offlineInputs(state: HostState, target: Ns, intent?: Intent): { snapshot: LiveSnapshot; runner: OfflineRunner; leases: Map<string, string>; originals: Map<string, string> } {
  const runner = new OfflineRunner(state.reads);
  const live = new Map(state.resources.map((r) => [r.id, r]));
  // A sysctl the export did not read (the config names a new key): its current value is unknown
  // here. Planned as an adoption of "unknown"; applying re-reads the real value first.
  for (const s of intent?.sysctls ?? []) {
    const id = `sysctl:${s.key}`;
    if (!live.has(id)) live.set(id, { kind: "sysctl", name: s.key, id, keys: [], spec: { value: "unknown" }, data: {}, deps: [], owned: false });
  }
  const snapshot: LiveSnapshot = {
    live,
    foreign: new Map(Object.entries(state.foreign)),
    netns: new Set(state.netns),
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
