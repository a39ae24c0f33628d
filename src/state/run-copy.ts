import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { RUN_DIR } from "../exec/run-dir.js";

export { RUN_DIR };

/*
 * Copies in the run dir (tmpfs: it lives exactly as long as the namespaces and links bolt makes)
 * of what losing the state dir must not lose: each managed sysctl's value from before bolt
 * (what a destroy restores), and the journal of a running apply (what the next process undoes:
 * an apply killed between `ip netns add` and the namespace's mark leaves a namespace only the
 * journal knows is bolt's).
 */

function originalsFile(target: string): string {
  return join(RUN_DIR(), "sysctl", `${target || "_host"}.json`);
}

/** The copy of the recorded originals (empty when there is none or it cannot be read). */
export function readRunOriginals(target: string): Map<string, string> {
  try {
    const v = JSON.parse(readFileSync(originalsFile(target), "utf8")) as Record<string, unknown>;
    return new Map(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string"));
  } catch {
    return new Map();
  }
}

/** Best effort (the store stays the record): a /run that cannot be written loses only the copy. */
export function writeRunOriginals(target: string, originals: Map<string, string>): void {
  const file = originalsFile(target);
  try {
    if (!originals.size) {
      rmSync(file, { force: true });
      return;
    }
    mkdirSync(join(RUN_DIR(), "sysctl"), { recursive: true, mode: 0o700 });
    writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(originals)), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  } catch {
    /* see above */
  }
}

function journalFile(target: string): string {
  return join(RUN_DIR(), "journal", `${target || "_host"}.json`);
}

export interface RunJournal {
  pid: number;
  startedAt: string;
  payload: string;
}

/** The copy of a running (or interrupted) apply's journal, when there is a readable one. */
export function readRunJournal(target: string): RunJournal | undefined {
  try {
    const v = JSON.parse(readFileSync(journalFile(target), "utf8")) as Partial<RunJournal>;
    return typeof v.pid === "number" && typeof v.startedAt === "string" && typeof v.payload === "string"
      ? { pid: v.pid, startedAt: v.startedAt, payload: v.payload }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Best effort, like the originals' copy: the store's journal stays the record. */
export function writeRunJournal(target: string, j: RunJournal | undefined): void {
  const file = journalFile(target);
  try {
    if (!j) {
      rmSync(file, { force: true });
      return;
    }
    mkdirSync(join(RUN_DIR(), "journal"), { recursive: true, mode: 0o700 });
    writeFileSync(`${file}.tmp`, JSON.stringify(j), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  } catch {
    /* see above */
  }
}
