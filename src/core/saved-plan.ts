import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { upgradeIntent } from "./intent.js";
import type { Intent } from "./intent.js";
import type { Ns } from "../exec/runner.js";
import { BoltError } from "./diagnostics.js";
import type { Plan } from "./plan.js";
import type { Resource } from "./resource.js";

/**
 * `bolt plan --out plan.json` / `bolt apply plan.json` (Terraform's saved plan): the desired
 * resources, the intent they were read with, the changes, and a fingerprint of the live state
 * the plan was made against. Applying re-reads the kernel and refuses when the fingerprint
 * differs, so what was reviewed is exactly what runs.
 */
export const SAVED_PLAN_FORMAT = "bolt-plan";
export const SAVED_PLAN_VERSION = 1;

export interface LiveEntry {
  id: string;
  owned: boolean;
  spec: Record<string, string>;
}

export interface SavedPlan {
  format: typeof SAVED_PLAN_FORMAT;
  format_version: number;
  created_at: string;
  target: Ns;
  files: string[];
  deep: boolean;
  destroy: boolean;
  fingerprint: string;
  /** the live state fingerprinted, to say what changed when it no longer matches */
  live: LiveEntry[];
  changes: { action: string; address: string }[];
  desired: Resource[];
  intent: Intent;
}

/**
 * The comparable part of what the plan was made against: every resource read (owned ones and
 * the unowned ones a plan adopts or must not collide with), by id, with its spec. Counters and
 * other `data` are not state. Sensitive values enter as digests (an exported state has no other form).
 */
export function liveEntries(before: Resource[]): LiveEntry[] {
  return before.map((r) => ({ id: r.id, owned: r.owned, spec: sortedSpec(digestSensitive(r)) })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function fingerprint(entries: LiveEntry[]): string {
  return "sha256:" + createHash("sha256").update(JSON.stringify(entries)).digest("hex");
}

/** A sensitive spec value as it may be stored or compared: `sha256:…` (already a digest in an exported state). */
export function digestValue(v: string): string {
  return v.startsWith("sha256:") || v === "" ? v : "sha256:" + createHash("sha256").update(v).digest("hex");
}

function digestSensitive(r: Resource): Record<string, string> {
  if (!r.sensitive?.length) return r.spec;
  const spec = { ...r.spec };
  for (const k of r.sensitive) if (k in spec) spec[k] = digestValue(spec[k]!);
  return spec;
}

function sortedSpec(spec: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(spec)
      .sort()
      .map((k) => [k, spec[k]!]),
  );
}

export function toSavedPlan(plan: Plan, intent: Intent, opts: { deep: boolean; destroy: boolean }): SavedPlan {
  const live = liveEntries(plan.before);
  return {
    format: SAVED_PLAN_FORMAT,
    format_version: SAVED_PLAN_VERSION,
    created_at: new Date().toISOString(),
    target: plan.target,
    files: intent.files,
    deep: opts.deep,
    destroy: opts.destroy,
    fingerprint: fingerprint(live),
    live,
    changes: plan.changes.map((c) => ({ action: c.action, address: c.id })),
    desired: plan.desired,
    intent,
  };
}

export function writeSavedPlan(path: string, saved: SavedPlan): void {
  // 0600: the desired state may carry sensitive values (WireGuard preshared keys).
  writeFileSync(path, JSON.stringify(saved, null, 2) + "\n", { mode: 0o600 });
}

export function readSavedPlan(path: string): SavedPlan {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new BoltError(`cannot read saved plan ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let v: Partial<SavedPlan>;
  try {
    v = JSON.parse(text) as Partial<SavedPlan>;
  } catch (e) {
    throw new BoltError(`${path} is not a saved plan: ${(e as Error).message} (write one with \`bolt plan --out ${path}\`)`);
  }
  if (v?.format !== SAVED_PLAN_FORMAT)
    throw new BoltError(`${path} is not a saved plan (no "format": "${SAVED_PLAN_FORMAT}"); write one with \`bolt plan --out ${path}\``);
  if (v.format_version !== SAVED_PLAN_VERSION)
    throw new BoltError(
      `${path}: saved plan format_version ${String(v.format_version)} is not supported by this bolt (it reads ${SAVED_PLAN_VERSION}); plan again with this version`,
    );
  for (const k of ["fingerprint", "live", "changes", "desired", "intent"] as const)
    if (v[k] === undefined) throw new BoltError(`${path}: saved plan has no "${k}"`);
  return { ...v, intent: upgradeIntent(v.intent) } as SavedPlan;
}

/** What differs between the live state a plan was made against and the live state now. */
export function liveDrift(then: LiveEntry[], now: LiveEntry[]): string[] {
  const before = new Map(then.map((e) => [e.id, e]));
  const after = new Map(now.map((e) => [e.id, e]));
  const out: string[] = [];
  for (const [id, b] of before) {
    const a = after.get(id);
    if (!a) out.push(`${id} is gone`);
    else if (a.owned !== b.owned) out.push(`${id} is ${a.owned ? "now" : "no longer"} bolt's`);
    else {
      const keys = [...new Set([...Object.keys(b.spec), ...Object.keys(a.spec)])].filter((k) => (b.spec[k] ?? "") !== (a.spec[k] ?? ""));
      if (keys.length) out.push(`${id} changed ${keys.map((k) => `${k} (${show(b.spec[k])} → ${show(a.spec[k])})`).join(", ")}`);
    }
  }
  for (const id of after.keys()) if (!before.has(id)) out.push(`${id} appeared`);
  return out;
}

function show(v: string | undefined): string {
  if (v === undefined || v === "") return "-";
  return v.startsWith("sha256:") ? "(sensitive)" : v.length > 40 ? v.slice(0, 37) + "…" : v;
}
