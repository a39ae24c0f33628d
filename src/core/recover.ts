import { compareWithBefore, runUndo } from "./apply.js";
import type { JournalPayload } from "./apply.js";
import { BoltError } from "./diagnostics.js";
import type { Registry } from "./registry.js";
import type { CommandRunner, Ns } from "../exec/runner.js";
import type { StateStore } from "../state/store.js";

export interface Recovery {
  startedAt: string;
  pid: number;
  undone: number;
  problems: string[];
}

/**
 * An apply that was killed mid-way left its journal: undo every op it may have started
 * (forced: ops that never ran fail harmlessly), newest first, and check the kernel matches
 * what the journal recorded before. Call with the target lock held.
 */
export async function recoverJournal(store: StateStore, runner: CommandRunner, registry: Registry, target: Ns): Promise<Recovery | undefined> {
  const row = store.journal(target);
  if (!row) return undefined;
  let payload: JournalPayload;
  try {
    payload = JSON.parse(row.payload) as JournalPayload;
    if (payload?.version !== 1 || !Array.isArray(payload.started) || !Array.isArray(payload.before)) throw new Error("not a bolt journal");
  } catch (e) {
    // No dead end: what the kernel has is still readable, only the undo list is lost.
    throw new BoltError(
      `the journal of the interrupted apply (pid ${row.pid}, ${row.startedAt}) is unreadable (${(e as Error).message}): \`bolt rollback --discard-journal\` drops it, then \`bolt plan\` shows what the kernel has`,
    );
  }
  const undo = [...payload.started].reverse().flatMap((o) => o.undo);
  const problems = await runUndo(runner, undo);
  const strings = (v: unknown) => new Set(Array.isArray(v) ? v.filter((k): k is string => typeof k === "string") : []);
  // A journal without a scope (an older bolt's) holds every object read: compared against every kind.
  const present = new Map(Object.entries(payload.present ?? {}).filter((e): e is [string, string] => typeof e[1] === "string"));
  const scoped = Array.isArray(payload.kinds) ? { kinds: strings(payload.kinds), present } : undefined;
  const left = await compareWithBefore(payload.before, target, runner, registry, new Map(payload.originals), payload.creates ?? [], scoped);
  // Undo lines for ops that never ran fail by design; only the final comparison decides.
  const ok = left.length === 0;
  if (ok) store.clearJournal(target);
  return { startedAt: row.startedAt, pid: row.pid, undone: payload.started.length, problems: ok ? [] : [...left, ...problems] };
}

/**
 * What a pending journal says its apply created (kernel keys), for a plan made before the next
 * apply repairs it; nothing when there is no journal or it is unreadable (that is said elsewhere).
 */
export function journalCreates(payload: string | undefined): string[] {
  if (payload === undefined) return [];
  try {
    const p = JSON.parse(payload) as Partial<JournalPayload>;
    return Array.isArray(p?.creates) ? p.creates.filter((k): k is string => typeof k === "string") : [];
  } catch {
    return [];
  }
}
