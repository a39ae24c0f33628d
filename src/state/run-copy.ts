import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { RUN_DIR } from "../exec/run-dir.js";

export { RUN_DIR };

/*
 * A copy of each managed sysctl's value from before bolt, in the run dir (tmpfs), so that losing
 * the state dir does not lose what a destroy must restore.
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
