import type { Diagnostic, SourcePos } from "../core/diagnostics.js";
import type { Intent } from "../core/intent.js";
import { intentFor } from "../core/intent.js";
import type { Registry } from "../core/registry.js";
import type { IntentOptions } from "../core/resource.js";
import type { LoadedFile } from "./load.js";

export type NormalizeOptions = IntentOptions;

/**
 * Semantic checks the schema cannot express (addresses, overlaps, references, kernel name
 * rules) and normalization into one Intent for all files: each kind that reads the config
 * builds its fragment, after the kinds it uses. Pure: reads nothing but its input (and the
 * files the config names, such as blocklists and key files).
 */
export function normalize(files: LoadedFile[], registry: Registry, opts: NormalizeOptions = {}): { intent: Intent; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const err = (message: string, source: SourcePos, hint?: string) => void diagnostics.push({ severity: "error", message, source, hint });
  const intent: Intent = { files: files.map((f) => f.path), kinds: {} };
  for (const k of registry.desiredOrder) {
    if (!k.intent) continue;
    const f = k.intent.build(files, { err, diagnostics, intent: intentFor(intent, k.uses ?? []), opts });
    if (f !== undefined) intent.kinds[k.kind] = f;
  }
  return { intent, diagnostics };
}
