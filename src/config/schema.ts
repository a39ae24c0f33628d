import { statSync } from "node:fs";
import { createRequire } from "node:module";
import type { ErrorObject, ValidateFunction } from "ajv";
import { closest, distance } from "fastest-levenshtein";
import type { Diagnostic } from "../core/diagnostics.js";
import type { FileKind, LoadedFile } from "./load.js";
import { SCHEMA_DIR, SCHEMA_FILES, VALIDATORS_FILE, loadRawSchemas, makeAjv } from "./ajv-setup.js";
import type { Schema } from "./ajv-setup.js";

let compiled: { byKind: Record<FileKind, ValidateFunction>; raw: Map<string, Schema> } | undefined;

/**
 * Validators: the build's standalone code when it is newer than the schemas (compiling the
 * schemas at startup costs ~0.5 s), else compiled now (tests on a fresh edit of a schema).
 */
function load() {
  if (compiled) return compiled;
  const raw = loadRawSchemas();
  let byKind: Record<FileKind, ValidateFunction> | undefined;
  try {
    const newest = Math.max(...Object.values(SCHEMA_FILES).map((f) => statSync(`${SCHEMA_DIR}/${f}`).mtimeMs));
    if (statSync(VALIDATORS_FILE).mtimeMs >= newest) byKind = createRequire(import.meta.url)(VALIDATORS_FILE) as Record<FileKind, ValidateFunction>;
  } catch {
    byKind = undefined;
  }
  if (!byKind) {
    const ajv = makeAjv();
    byKind = Object.fromEntries((Object.keys(SCHEMA_FILES) as FileKind[]).map((k) => [k, ajv.getSchema(SCHEMA_FILES[k])!])) as Record<
      FileKind,
      ValidateFunction
    >;
  }
  compiled = { byKind, raw };
  return compiled;
}

/** Schema validation: unknown keys with a did-you-mean, type/range errors at the value. */
export function validateSchema(file: LoadedFile): Diagnostic[] {
  const { byKind } = load();
  const validate = byKind[file.kind];
  if (validate(file.data)) return notEnforced(file);
  const errs = (validate.errors ?? []).filter((e) => !["anyOf", "oneOf", "if"].includes(e.keyword) || validate.errors!.length === 1);
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const e of errs) {
    const d = toDiagnostic(file, e);
    const key = `${d.source?.line}:${d.source?.col}:${d.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(d);
    }
  }
  return out;
}

function toDiagnostic(file: LoadedFile, e: ErrorObject): Diagnostic {
  const where = e.instancePath || "/";
  if (e.keyword === "additionalProperties") {
    const key = (e.params as { additionalProperty: string }).additionalProperty;
    const ptr = `${e.instancePath}/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`;
    const known = Object.keys((e.parentSchema?.properties as object | undefined) ?? {});
    const guess = known.length ? closest(key, known) : undefined;
    const hint =
      guess && distance(key, guess) <= Math.max(2, Math.floor(guess.length / 3))
        ? `did you mean "${guess}"?`
        : known.length
          ? `known keys: ${known.join(", ")}`
          : undefined;
    return { severity: "error", message: `unknown key "${key}" in ${where}`, source: file.positions.key(ptr), path: ptr, hint };
  }
  if (e.keyword === "propertyNames") {
    const name = (e.params as { propertyName?: string }).propertyName ?? "";
    const ptr = `${e.instancePath}/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`;
    return { severity: "error", message: `invalid name "${name}" in ${where}: ${describeNameRule(e)}`, source: file.positions.key(ptr), path: ptr };
  }
  if (e.keyword === "enum") {
    const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
    const v = String(e.data);
    const guess = closest(v, allowed.map(String));
    return {
      severity: "error",
      message: `${where}: "${v}" is not one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`,
      source: file.positions.value(e.instancePath),
      path: e.instancePath,
      hint: guess && distance(v, guess) <= 2 ? `did you mean "${guess}"?` : undefined,
    };
  }
  const desc = typeof e.parentSchema?.description === "string" ? e.parentSchema.description : undefined;
  let msg = `${where}: ${e.message ?? e.keyword}`;
  if (e.keyword === "maxLength" && /name|bridge|interface/i.test(where)) msg += " (Linux interface names are at most 15 characters)";
  if (e.keyword === "pattern" && desc) msg = `${where}: ${JSON.stringify(e.data)} is not valid: ${firstSentence(desc)}`;
  // Errors about a property *name* (inside propertyNames) belong at that key, not at the parent table.
  const source =
    e.propertyName !== undefined
      ? file.positions.key(`${e.instancePath}/${e.propertyName.replace(/~/g, "~0").replace(/\//g, "~1")}`)
      : file.positions.value(e.instancePath);
  return { severity: "error", message: msg, source, path: e.instancePath };
}

function describeNameRule(e: ErrorObject): string {
  const ps = e.parentSchema?.propertyNames as Schema | undefined;
  const parts: string[] = [];
  if (ps?.pattern) parts.push(`must match ${String(ps.pattern)}`);
  if (ps?.maxLength) parts.push(`at most ${String(ps.maxLength)} characters`);
  return parts.join(", ") || "not allowed";
}

function firstSentence(s: string): string {
  const i = s.search(/(?<!\b(?:e\.g|i\.e))\. /); // "e.g. " does not end a sentence
  return i > 0 ? s.slice(0, i) : s.replace(/\.$/, "");
}

/**
 * Walk the data alongside its schema and warn for every present key the schema marks
 * `x-not-enforced`: accepted, shown, never silently dropped.
 */
function notEnforced(file: LoadedFile): Diagnostic[] {
  const { raw } = load();
  const fileName = SCHEMA_FILES[file.kind];
  const out: Diagnostic[] = [];
  const resolved = new Map<Schema, [Schema | undefined, string]>();
  const regexes = new Map<string, RegExp>();
  const resolve = (s: Schema | undefined, base: string): [Schema | undefined, string] => {
    if (!s) return [undefined, base];
    const hit = typeof s.$ref === "string" && !(s.$ref as string).startsWith("#") ? resolved.get(s) : undefined;
    if (hit) return hit;
    let cur: Schema | undefined = s;
    let curBase = base;
    for (let i = 0; cur && typeof cur.$ref === "string" && i < 10; i++) {
      const [doc, frag] = (cur.$ref as string).split("#");
      if (doc) curBase = doc.split("/").pop()!;
      let target: unknown = raw.get(curBase);
      for (const seg of (frag ?? "").split("/").filter(Boolean)) target = (target as Schema | undefined)?.[seg];
      cur = target as Schema | undefined;
    }
    // Cross-file refs resolve the same from any base; local ones depend on it (not cached).
    if (typeof s.$ref === "string" && !(s.$ref as string).startsWith("#")) resolved.set(s, [cur, curBase]);
    return [cur, curBase];
  };
  // Whether any x-not-enforced sits at or below a schema: subtrees without one are not walked.
  const notes = new Map<Schema, boolean>();
  const hasNotes = (schema: Schema | undefined, base: string, depth = 0): boolean => {
    if (!schema || depth > 12) return false;
    const known = notes.get(schema);
    if (known !== undefined) return known;
    notes.set(schema, false); // cycle guard
    const [s, b] = resolve(schema, base);
    let found = typeof schema["x-not-enforced"] === "string" || typeof s?.["x-not-enforced"] === "string";
    if (!found && s) {
      const kids = [
        ...Object.values((s.properties ?? {}) as Record<string, Schema>),
        ...Object.values((s.patternProperties ?? {}) as Record<string, Schema>),
        ...(typeof s.additionalProperties === "object" ? [s.additionalProperties as Schema] : []),
        ...(s.items ? [s.items as Schema] : []),
      ];
      found = kids.some((k) => hasNotes(k, b, depth + 1));
    }
    notes.set(schema, found);
    return found;
  };
  const walk = (data: unknown, schema: Schema | undefined, base: string, path: string) => {
    if (!hasNotes(schema, base)) return;
    const [s, b] = resolve(schema, base);
    if (!s) return;
    // The annotation may sit beside a $ref (`{ "$ref": …, "x-not-enforced": … }`), which resolve() steps over.
    const note = schema?.["x-not-enforced"] ?? s["x-not-enforced"];
    if (typeof note === "string" && path) {
      out.push({
        severity: "warning",
        message: `accepted, not enforced: ${path.slice(1).replace(/\//g, ".")} — ${note}`,
        source: file.positions.key(path),
        path,
      });
      return;
    }
    if (Array.isArray(data)) {
      const items = s.items as Schema | undefined;
      data.forEach((d, i) => walk(d, items, b, `${path}/${i}`));
    } else if (data && typeof data === "object") {
      const props = (s.properties ?? {}) as Record<string, Schema>;
      const pats = Object.entries((s.patternProperties ?? {}) as Record<string, Schema>);
      for (const [k, v] of Object.entries(data)) {
        const sub =
          props[k] ??
          pats.find(([re]) => (regexes.get(re) ?? regexes.set(re, new RegExp(re)).get(re)!).test(k))?.[1] ??
          (typeof s.additionalProperties === "object" ? (s.additionalProperties as Schema) : undefined);
        walk(v, sub, b, `${path}/${k}`);
      }
    }
  };
  walk(file.data, raw.get(fileName), fileName, "");
  return out;
}
