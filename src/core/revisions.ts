import { createHash } from "node:crypto";
import { emptyIntent, upgradeIntent } from "./intent.js";
import type { Intent } from "./intent.js";
import type { Ns } from "../exec/runner.js";
import type { RevisionRow, StateStore } from "../state/store.js";
import type { Resource } from "./resource.js";
import { BoltError } from "./diagnostics.js";
import { parseBig, stringifyBig } from "./json-bigint.js";
import { chunkJson, unchunkJson } from "../base/json-chunks.js";

/** What a revision holds: the resources the target converged to, and the intent they were read with. */
export interface RevisionState {
  desired: Resource[];
  intent: Intent;
}

/**
 * Serialized once, long arrays as content-defined chunks (base/json-chunks.ts): the store keeps
 * each run once, so a revision that differs by one endpoint adds a few runs. The blob's hash
 * (over the manifests, which name the runs by hash) dedupes identical states (drift repairs
 * re-record the same one).
 */
export function encodeRevision(desired: Resource[], intent: Intent): { hash: string; desired: string; intent: string; chunks: Map<string, string> } {
  const d = chunkJson(desired, (v) => JSON.stringify(v));
  const i = chunkJson(intent, stringifyBig);
  return {
    hash: createHash("sha256").update(d.manifest).update("\0").update(i.manifest).digest("hex"),
    desired: d.manifest,
    intent: i.manifest,
    chunks: new Map([...d.chunks, ...i.chunks]),
  };
}

/** The state a revision recorded; id 0 is "before bolt owned anything" (everything removed). */
export function revisionState(store: StateStore, target: Ns, id: number): RevisionState {
  if (id === 0) return { desired: [], intent: emptyIntent() };
  const row = store.revision(id);
  if (!row || row.target !== (target ?? "")) {
    const where = target === null ? "the host namespace" : `netns ${target}`;
    const oldest = row ? undefined : store.revisions(target)[0];
    const pruned = oldest && oldest.id > id ? `: older revisions than ${oldest.id} were pruned, bolt keeps the last ${store.revisionsKept}` : "";
    throw new BoltError(`no revision ${id} for ${where}${pruned} (see \`bolt history\`)`);
  }
  return { desired: unchunkJson(row.desired, JSON.parse, (h) => store.chunk(h)) as Resource[], intent: revisionIntent(store, row) };
}

/** The intent a revision's row recorded (rows from before chunking hold the whole JSON: unchunkJson gives it back as it is). */
export function revisionIntent(store: StateStore, row: { intent: string }): Intent {
  return upgradeIntent(unchunkJson(row.intent, parseBig, (h) => store.chunk(h)) as Intent);
}

/** The last revision the target converged to for good (not pending, reverted or failed). */
export function headRevision(store: StateStore, target: Ns): RevisionRow | undefined {
  return store
    .revisions(target)
    .filter((r) => r.status === "applied" || r.status === "confirmed")
    .pop();
}

export function pendingRevisions(store: StateStore, target: Ns): RevisionRow[] {
  return store.revisions(target).filter((r) => r.status === "pending");
}
