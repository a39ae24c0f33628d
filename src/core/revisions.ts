import { createHash } from "node:crypto";
import { emptyIntent, upgradeIntent } from "./intent.js";
import type { Intent } from "./intent.js";
import type { Ns } from "../exec/runner.js";
import type { RevisionRow, StateStore } from "../state/store.js";
import type { Resource } from "./resource.js";
import { BoltError } from "./diagnostics.js";
import { parseBig, stringifyBig } from "./json-bigint.js";

/** What a revision holds: the resources the target converged to, and the intent they were read with. */
export interface RevisionState {
  desired: Resource[];
  intent: Intent;
}

/** Serialized once: the blob's hash dedupes identical states (drift repairs re-record the same one). */
export function encodeRevision(desired: Resource[], intent: Intent): { hash: string; desired: string; intent: string } {
  const d = JSON.stringify(desired);
  const i = stringifyBig(intent);
  return { hash: createHash("sha256").update(d).update("\0").update(i).digest("hex"), desired: d, intent: i };
}

/** The state a revision recorded; id 0 is "before bolt owned anything" (everything removed). */
export function revisionState(store: StateStore, target: Ns, id: number): RevisionState {
  if (id === 0) return { desired: [], intent: emptyIntent() };
  const row = store.revision(id);
  if (!row || row.target !== (target ?? ""))
    throw new BoltError(`no revision ${id} for ${target === null ? "the host namespace" : `netns ${target}`} (see \`bolt history\`)`);
  return { desired: JSON.parse(row.desired) as Resource[], intent: upgradeIntent(parseBig(row.intent) as Intent) };
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
