import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** A config file's name: what a directory given with `-f` contributes, and what a path must end in to be a file. */
export const CONFIG_FILE_RE = /\.(toml|ya?ml)$/i;

/**
 * `-f DIR` (a directory whose name is not itself a config file name): the merge of its config
 * files in name order, each keeping its own positions — what `bolt network create` writes into.
 * Hidden files (editor swap files, `.NAME.toml.tmp`) are skipped. A path named like a config file
 * stays as given, so a directory called `x.toml` is still the error it always was.
 */
export function expandConfigPaths(paths: string[]): string[] {
  return paths.flatMap((p) => (isConfigDir(p) ? configFilesIn(p) : [p]));
}

export function isConfigDir(p: string): boolean {
  if (CONFIG_FILE_RE.test(p)) return false;
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function configFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => CONFIG_FILE_RE.test(n) && !n.startsWith("."))
    .sort()
    .map((n) => join(dir, n));
}
