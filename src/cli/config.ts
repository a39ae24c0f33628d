import { ConfigError } from "../core/diagnostics.js";
import type { Diagnostic } from "../core/diagnostics.js";
import { loadFile } from "../config/load.js";
import { expandConfigPaths } from "../config/config-dir.js";
import type { LoadedFile } from "../config/load.js";
import { validateSchema } from "../config/schema.js";
import type { ParsedFiles } from "../config/parsed-cache.js";
import { normalize } from "../config/normalize.js";
import type { Intent } from "../core/intent.js";
import { REGISTRY } from "../../reconcilers/registry.js";

/** Parses and schema-checks every file (all files' errors together); throws ConfigError on any. `cache`: the daemon's parsed files. */
export function loadFiles(files: string[], cache?: ParsedFiles): { loaded: LoadedFile[]; diags: Diagnostic[] } {
  const diags: Diagnostic[] = [];
  const loaded: LoadedFile[] = [];
  for (const f of expandConfigPaths(files)) {
    try {
      const parsed = cache?.load(f);
      const lf = parsed?.lf ?? loadFile(f);
      diags.push(...(parsed ? parsed.schema() : validateSchema(lf)));
      loaded.push(lf);
    } catch (e) {
      if (e instanceof ConfigError) diags.push(...e.diagnostics);
      else throw e;
    }
  }
  if (diags.some((d) => d.severity === "error")) throw new ConfigError(diags);
  return { loaded, diags };
}

/** load → schema → semantic checks, for every file; throws ConfigError with all errors found. */
/**
 * `offline`: validating without the target host at hand (bolt validate, CI plans): key files
 * that are missing here are reported as warnings instead of errors.
 */
export function loadIntent(
  files: string[],
  netnsPrefix: string | undefined,
  opts: { offline?: boolean; skipAclTests?: boolean; external?: Record<string, unknown> } = {},
): { intent: Intent; warnings: Diagnostic[] } {
  const { loaded, diags } = loadFiles(files);
  const { intent, diagnostics } = normalize(loaded, REGISTRY, { netnsPrefix, offline: opts.offline, skipAclTests: opts.skipAclTests, external: opts.external });
  diags.push(...diagnostics);
  if (diags.some((d) => d.severity === "error")) throw new ConfigError(diags);
  return { intent, warnings: diags };
}
