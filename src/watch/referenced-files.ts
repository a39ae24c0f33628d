import { dirname, isAbsolute, resolve } from "node:path";
import type { Intent } from "../core/intent.js";

/**
 * Files a config refers to, whose edits must trigger a pass like the config's own: the
 * blocklists of [firewall.ddos] and, generically, any string field of the intent whose name
 * ends in "File"/"file" or is "path" (WireGuard key files). Relative paths are resolved against
 * the directory of the config file that named them (the `source` of the object holding the field).
 */
export function referencedFiles(intent: Intent): string[] {
  const out = new Set<string>();
  const base = intent.files[0] ? dirname(resolve(intent.files[0])) : process.cwd();
  const visit = (v: unknown, dir: string, depth: number) => {
    if (depth > 8 || v === null || typeof v !== "object") return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x, dir, depth + 1);
      return;
    }
    const o = v as Record<string, unknown>;
    const src = o.source as { file?: unknown } | undefined;
    const here = src && typeof src.file === "string" && src.file ? dirname(resolve(src.file)) : dir;
    for (const [k, x] of Object.entries(o)) {
      if (typeof x === "string" && x && (/[a-z]File$/.test(k) || k === "path" || k === "keyFile")) out.add(isAbsolute(x) ? x : resolve(here, x));
      else if (k !== "source" && k !== "fieldSources") visit(x, here, depth + 1);
    }
  };
  visit({ ...intent, files: [] }, base, 0);
  return [...out].sort();
}
