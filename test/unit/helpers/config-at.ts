// Config files written to a temp dir and loaded as the CLI loads them, and the check most
// config-error tests make: the error is a ConfigError whose diagnostic matching `message` sits
// exactly at `needle` (its line, and the column of its first character).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect } from "vitest";
import { loadIntent } from "../../../src/cli/config.js";
import { ConfigError } from "../../../src/core/diagnostics.js";
import type { Diagnostic } from "../../../src/core/diagnostics.js";

export function configFiles(prefix: string): {
  dir: string;
  load: (text: string) => ReturnType<typeof loadIntent>;
  errorAt: (text: string, needle: string, message: RegExp) => void;
  diagnosticOf: (text: string, message: RegExp) => Diagnostic;
} {
  const dir = mkdtempSync(join(tmpdir(), `bolt-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const load = (text: string) => {
    const p = join(dir, `${prefix}${n++}.toml`);
    writeFileSync(p, text);
    return loadIntent([p], "");
  };
  /** The ConfigError's diagnostic matching `message` (the load must fail with one). */
  const diagnosticOf = (text: string, message: RegExp): Diagnostic => {
    let err: unknown;
    try {
      load(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const d = (err as ConfigError).diagnostics.find((x) => message.test(x.message));
    expect(d, (err as ConfigError).diagnostics.map((x) => x.message).join("\n")).toBeDefined();
    return d!;
  };
  const errorAt = (text: string, needle: string, message: RegExp) => {
    const d = diagnosticOf(text, message);
    const before = text.slice(0, text.indexOf(needle)).split("\n");
    expect({ line: d.source?.line, col: d.source?.col }).toEqual({ line: before.length, col: before.at(-1)!.length + 1 });
  };
  return { dir, load, errorAt, diagnosticOf };
}
