import type { Diagnostic, SourcePos } from "./diagnostics.js";
import type { Intent } from "../config/model.js";
import type { Ns } from "../exec/runner.js";
import type { LiveReader } from "./live-reader.js";

/**
 * One desired or live object in the shared resource model. `spec` is the comparable state
 * as display strings (what the plan prints is exactly what is diffed); `data` carries what
 * renderers need but diffs ignore.
 */
export interface Resource {
  kind: string;
  name: string;
  id: string; // `${kind}:${name}`
  /** kernel identities this object occupies, e.g. `link:bolt-web`: two objects may not share one */
  keys: string[];
  spec: Record<string, string>;
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

/** A single kernel write: one `ip -batch` line or one argv, with what undoes it. */
export interface OpLine {
  /** ip: one `ip -batch` line; wg: [ifname, ...one `wg set` peer clause]; exec: an argv */
  tool: "ip" | "exec" | "wg";
  ns: Ns;
  args: string[];
  /** standard input of an exec'd command (an `nft -f -` transaction) */
  stdin?: string;
}

export interface Op extends OpLine {
  /** ordering bucket; creates run in ascending stage, deletes in descending */
  stage: number;
  undo: OpLine[];
  /** index of the plan step this op belongs to (set by the planner) */
  step?: number;
  /** part of taking something down: runs in the destroy phase, before any build op */
  destroy?: boolean;
}

/** Buckets shared by all kinds so that batches group well: lower stages exist first. */
export const STAGE = {
  netns: 10,
  link: 20,
  /** wireguard-go (userspace WireGuard) creates its tun device */
  wgdev: 21,
  wgaddr: 22,
  wgconf: 23,
  wgpeer: 24,
  port: 30,
  inside: 40,
  route: 42,
  rule: 43,
  nft: 45,
  sysctl: 50,
} as const;

export interface PlanContext {
  target: Ns;
  intent: Intent;
  /** all live resources (owned and foreign) by id */
  live: Map<string, Resource>;
  leases: Map<string, string>;
  /** namespaces that exist now (names) */
  netns: Set<string>;
  /** desired resources of the kinds before this one in the registry (e.g. endpoint addresses for NAT) */
  desired: Resource[];
}

export interface ReadContext {
  /** enter endpoint namespaces: all (true), none (false) or these resource ids */
  deep: boolean | Set<string>;
  intent: Intent;
  /** sysctl values bolt changed, as they were before (state store) */
  originals: Map<string, string>;
}

export interface ReadResult {
  resources: Resource[];
  /** kernel objects bolt does not own that desired objects must not collide with, key → description */
  foreign: Map<string, string>;
  diagnostics?: Diagnostic[];
}

export interface Reconciler {
  kind: string;
  /** spec fields whose change cannot be done in place */
  replaceOn: string[];
  /** whether an unowned live object with the desired id is taken over (sysctl) instead of a conflict */
  adopts?: boolean;
  desired(ctx: PlanContext): { resources: Resource[]; diagnostics: Diagnostic[] };
  read(io: LiveReader, ctx: ReadContext): Promise<ReadResult>;
  /** plan-time conflicts with the live system beyond name collisions (e.g. overlapping routes) */
  conflicts?(desired: Resource[], io: LiveReader): Promise<Diagnostic[]>;
  /**
   * After the diff, before rendering, only for kinds with changes: fetch what rendering needs
   * but a no-op plan should not pay for (nft's table text for the undo) and run checks that
   * only matter when something changes (`nft -c`).
   */
  prepare?(changes: Change[], io: LiveReader): Promise<Diagnostic[]>;
  /** ops for a create, update or delete (the planner splits a replace into delete + create) */
  render(change: Change, ctx: PlanContext): Op[];
  /**
   * Reads to run right after the writes, in the same `ip -batch` process, whose answers
   * prime the verify read (saves one process per endpoint namespace).
   */
  readBack?(change: Change): { ns: string; lines: string[] }[];
  /** durable bookkeeping after a verified apply (leases, original sysctl values) */
  commit?(change: Change, store: CommitStore, target: Ns): void;
}

export interface CommitStore {
  setLease(target: Ns, network: string, endpoint: string, ip: string): void;
  releaseLease(target: Ns, endpoint: string): void;
  setOriginal(target: Ns, key: string, value: string): void;
  dropOriginal(target: Ns, key: string): void;
}
