import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { RUN_DIR } from "../exec/run-dir.js";

export { RUN_DIR };

/*
 * Copies in the run dir (tmpfs: it lives exactly as long as the namespaces and links bolt makes)
 * of what losing the state dir must not lose: each managed sysctl's value from before bolt
 * (what a destroy restores), and the journal of a running apply (what the next process undoes:
 * an apply killed between `ip netns add` and the namespace's mark leaves a namespace only the
 * journal knows is bolt's). Best effort: the store stays the record, and a /run that cannot be
 * written loses only the copy.
 */

type Copy = "sysctl" | "journal";

const copyFile = (kind: Copy, target: string) => join(RUN_DIR(), kind, `${target || "_host"}.json`);

/** The parsed copy, or undefined when there is none or it cannot be read. */
function readCopy(kind: Copy, target: string): unknown {
  try {
    return JSON.parse(readFileSync(copyFile(kind, target), "utf8"));
  } catch {
    return undefined;
  }
}

/** Writes the copy atomically (a temp file renamed over it); undefined removes it. */
function writeCopy(kind: Copy, target: string, value: unknown): void {
  const file = copyFile(kind, target);
  try {
    if (value === undefined) {
      rmSync(file, { force: true });
      return;
    }
    mkdirSync(join(RUN_DIR(), kind), { recursive: true, mode: 0o700 });
    writeFileSync(`${file}.tmp`, JSON.stringify(value), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  } catch {
    /* see above */
  }
}

/** The copy of the recorded originals (empty when there is none or it cannot be read). */
export function readRunOriginals(target: string): Map<string, string> {
  const v = readCopy("sysctl", target);
  if (!v || typeof v !== "object") return new Map();
  return new Map(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string"));
}

export function writeRunOriginals(target: string, originals: Map<string, string>): void {
  writeCopy("sysctl", target, originals.size ? Object.fromEntries(originals) : undefined);
}

export interface RunJournal {
  pid: number;
  startedAt: string;
  payload: string;
}

/** The copy of a running (or interrupted) apply's journal, when there is a readable one. */
export function readRunJournal(target: string): RunJournal | undefined {
  const v = readCopy("journal", target) as Partial<RunJournal> | undefined;
  return typeof v?.pid === "number" && typeof v.startedAt === "string" && typeof v.payload === "string"
    ? { pid: v.pid, startedAt: v.startedAt, payload: v.payload }
    : undefined;
}

/** undefined: the apply ended (or was undone); the copy goes. */
export function writeRunJournal(target: string, j: RunJournal | undefined): void {
  writeCopy("journal", target, j);
}
