import type { Diagnostic, SourcePos } from "./diagnostics.js";
import type { Intent } from "./intent.js";
import type { LoadedFile } from "../config/load.js";
import type { OpLine } from "../exec/command.js";
import type { CommandRunner, Ns, RunResult } from "../exec/runner.js";
import type { CommitStore } from "../state/store.js";
import type { LiveReader } from "./live-reader.js";

export type { OpLine } from "../exec/command.js";
export type { CommitStore } from "../state/store.js";

/**
 * One desired or live object in the shared resource model. `spec` is the comparable state
 * as display strings (what the plan prints is exactly what is diffed); `data` carries what
 * renderers need but diffs ignore.
 */
export interface Resource<S extends Record<string, string> = Record<string, string>> {
  kind: string;
  name: string;
  id: string; // `${kind}:${name}`
  /** kernel identities this object occupies, e.g. `link:bolt-web`: two objects may not share one */
  keys: string[];
  spec: S;
  data?: Record<string, unknown>;
  deps: string[];
  owned: boolean;
  source?: SourcePos;
  fieldSources?: Record<string, SourcePos>;
  /** values that must never be printed (keys of spec shown as "(sensitive)") */
  sensitive?: string[];
  /** what deleting this object sets its fields back to (a sysctl's value from before bolt) */
  restores?: Record<string, string>;
  /** human text per spec field when the compared value is a digest (nft rules) */
  display?: Record<string, string>;
  /** live traffic counters per spec field ("N packets, M bytes"): shown, never state */
  counters?: Record<string, string>;
}

export type Action = "create" | "update" | "replace" | "delete";

export interface Change {
  id: string;
  kind: string;
  name: string;
  action: Action;
  before?: Resource;
  after?: Resource;
  /** spec fields that differ (for update/replace) */
  changed: string[];
  /** fields whose change forces replacement */
  forcedBy: string[];
  source?: SourcePos;
}

/** A write as a kind renders it: the phase of its kind it belongs to, and what undoes it. */
export interface RenderedOp extends OpLine {
  /** one of the kind's declared `phases` */
  phase: string;
  undo: OpLine[];
  /**
   * part of taking something down: runs in the destroy phase, before any build op. A delete's
   * op is by default; `false` keeps it among the build ops (a WireGuard peer replaced by its new
   * key: both clauses in one `wg set`).
   */
  destroy?: boolean;
}

/** A write as the planner orders it. */
export interface Op extends OpLine {
  /** ordering bucket, from the phase order: creates run in ascending stage, deletes in descending */
  stage: number;
  undo: OpLine[];
  /** index of the plan step this op belongs to (set by the planner) */
  step?: number;
  destroy?: boolean;
}

export interface PlanContext {
  target: Ns;
  /** the fragments of this kind and of the kinds it `uses` */
  intent: Intent;
  /** all live resources (owned and foreign) by id */
  live: Map<string, Resource>;
  leases: Map<string, string>;
  /** namespaces that exist now (names) */
  netns: Set<string>;
  /** what the kinds' reads learned of the host ("wireguard.kernel" → "yes") */
  facts: Map<string, string>;
  /** desired resources of the kinds this kind `uses` (e.g. endpoint addresses for NAT) */
  desired: Resource[];
  /** what this kind's `prepare` fetched, by change id */
  prepared: Map<string, Record<string, unknown>>;
}

export interface ReadContext {
  /** enter endpoint namespaces: all (true), none (false) or these resource ids */
  deep: boolean | Set<string>;
  intent: Intent;
  /** sysctl values bolt changed, as they were before (state store) */
  originals: Map<string, string>;
  /** ids that must be read even if neither the intent nor the store names them (a rollback compares what was there before) */
  also?: Set<string>;
  /**
   * verify after an apply: the objects it checks, as desired and as they were before (every
   * kind's). A kind may read only these (one endpoint's link, not a thousand); what else it
   * returns is not looked at.
   */
  only?: Resource[];
  /**
   * search the whole host for what bolt left behind (an endpoint namespace whose links are
   * gone): by default when the intent is empty (destroy). `false`: only what the target holds
   * (stats, which counts traffic of what exists, on a host with a thousand other namespaces)
   */
  leftovers?: boolean;
}

export interface ReadResult {
  resources: Resource[];
  /** kernel objects bolt does not own that desired objects must not collide with, key → description */
  foreign: Map<string, string>;
  diagnostics?: Diagnostic[];
  /** host capabilities the kind's `desired` depends on, named `KIND.FACT` (a kernel module present) */
  facts?: Record<string, string>;
}

export interface OfflineRead {
  /** argv outside any namespace */
  argv: string[];
  /** the answer on a host without this kind's objects (`--state none`) */
  absent: RunResult;
  /** what of the output to keep in the export (no MACs, no counters) */
  minimize?: (stdout: string) => string;
}

/** A read the planner may start early (before the config is loaded) and share between kinds. */
export type ReadRequest = { ip: string[]; ns?: null } | { exec: string[]; ns?: null };

export interface IntentContext {
  /** a config error at a position */
  err(message: string, source: SourcePos, hint?: string): void;
  diagnostics: Diagnostic[];
  /** fragments built so far: this kind's `uses` */
  intent: Intent;
  opts: IntentOptions;
}

export interface IntentOptions {
  /** prepended to every endpoint namespace name (tests, job runners running many copies) */
  netnsPrefix?: string;
  /** not on the target host: missing key files are warnings */
  offline?: boolean;
  /** `bolt mesh test` reports acl_tests itself instead of as config errors */
  skipAclTests?: boolean;
  /** inputs read before the files are normalized, by kind (the mesh's store snapshot) */
  external?: Record<string, unknown>;
}

/** The config fragment a kind reads from the loaded files (a kind without one derives its resources from other kinds' fragments). */
export interface IntentHooks {
  /** its fragment of the intent (undefined: the files say nothing of this kind) */
  build(files: LoadedFile[], ctx: IntentContext): unknown;
  /** "2 network(s)" for `bolt validate` */
  describe?(fragment: unknown): string;
}

/** Where a change sits on the scale the JSON plan reports (docs/plan-json.md). */
export type Impact = "update" | "create" | "replace" | "delete" | "connectivity";

export interface Reconciler {
  kind: string;
  /** write phases, each ordered after phases of this kind ("port") or of others ("network.link") */
  phases: Record<string, { after?: string[] }>;
  /** kinds whose intent fragments and desired resources this kind reads (and the only kinds it imports) */
  uses?: string[];
  intent?: IntentHooks;
  /** spec fields whose change cannot be done in place */
  replaceOn: string[];
  /** spec fields the config may leave empty: whatever the kernel chose then matches (a WireGuard listen port) */
  kernelChosen?: string[];
  /** whether an unowned live object with the desired id is taken over (sysctl) instead of a conflict */
  adopts?: boolean;
  desired(ctx: PlanContext): { resources: Resource[]; diagnostics: Diagnostic[] };
  read(io: LiveReader, ctx: ReadContext): Promise<ReadResult>;
  /**
   * files its read or desired looks at directly, not through a command (a run-dir state file, a
   * directory's existence): the daemon's plan memo (core/plan-memo.ts) is keyed on their stat
   */
  planFiles?(target: Ns): string[];
  /** reads every plan of this kind makes, started before the config is loaded */
  readScope?: ReadRequest[];
  /** raw reads `conflicts` makes, kept in `bolt state export` for offline plans */
  offlineReads?: OfflineRead[];
  /** what an offline plan could not check for this kind's changes (a warning when it has some) */
  offlineUnchecked?: string;
  /** live stand-ins for an offline plan, for objects an export could not know it needed (a newly named sysctl) */
  offlineLive?(intent: Intent): Resource[];
  /**
   * `bolt validate`'s checks with local tools that read no kernel state and start nothing
   * (BIRD's parser on the rendered config); a tool that is not installed is a warning
   */
  validateTools?(intent: Intent, runner: CommandRunner): Promise<Diagnostic[]>;
  /** plan-time conflicts with the live system beyond name collisions (e.g. overlapping routes) */
  conflicts?(desired: Resource[], io: LiveReader): Promise<Diagnostic[]>;
  /**
   * After the diff, before rendering, only for kinds with changes: fetch what rendering needs
   * but a no-op plan should not pay for (nft's table text for the undo) and run checks that
   * only matter when something changes (`nft -c`). Returns data per change id for `render`.
   */
  prepare?(changes: Change[], io: LiveReader): Promise<{ diagnostics: Diagnostic[]; prepared?: Map<string, Record<string, unknown>> }>;
  /** ops for a create, update or delete (the planner splits a replace into delete + create); pure */
  render(change: Change, ctx: PlanContext): RenderedOp[];
  /** a change's impact when it is more than its action (a moved address cuts traffic); default: the action */
  impact?(change: Change): Impact | undefined;
  /**
   * Reads to run right after the writes, in the same `ip -batch` process, whose answers
   * prime the verify read (saves one process per endpoint namespace).
   */
  readBack?(change: Change): { ns: string; lines: string[] }[];
  /** durable bookkeeping after a verified apply (leases, original sysctl values) */
  commit?(change: Change, store: CommitStore, target: Ns): void;
}
