// The daemon keeps its config files parsed across loads (src/config/parsed-cache.ts): that is
// only right if nothing downstream writes to a parsed file, and if a changed file is parsed again.
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ParsedFiles } from "../../src/config/parsed-cache.js";
import { loadIntent } from "../../src/cli/config.js";
import { loadWithRuntime } from "../../src/daemon/runtime-endpoints.js";

const EXAMPLES = ["bolt-network.toml", "firewall.toml", "job-runner.toml", "volantd.yaml"].map((f) => join(import.meta.dirname, "../../examples", f));

function deepFreeze(v: unknown): void {
  if (!v || typeof v !== "object" || Object.isFrozen(v)) return;
  Object.freeze(v);
  for (const x of Object.values(v)) deepFreeze(x);
}

describe("parsed config files kept across loads", () => {
  it("normalizing never writes to a parsed file: frozen, every example loads to the intent a fresh parse gives", () => {
    for (const f of EXAMPLES) {
      const parsed = new ParsedFiles();
      deepFreeze(parsed.load(f).lf.data);
      const eps = [{ name: "rt", network: Object.keys(parsed.load(f).lf.data.networks ?? { volant: 1 })[0]! }];
      // Twice through the cache (the second load reuses the frozen data), once fresh.
      const first = loadWithRuntime([f], "p-", {}, eps, parsed);
      const again = loadWithRuntime([f], "p-", {}, eps, parsed);
      const fresh = loadWithRuntime([f], "p-", {}, eps);
      expect(again.intent, f).toEqual(fresh.intent);
      expect(first.intent, f).toEqual(fresh.intent);
      expect(again.warnings).toEqual(fresh.warnings);
    }
    expect(loadIntent([EXAMPLES[0]!], undefined).intent).toBeTruthy();
  });

  it("a file saved again (renamed over, or written in place) is parsed again; an unchanged one is not", () => {
    const dir = mkdtempSync(join(tmpdir(), "bolt-parsed-"));
    const f = join(dir, "bolt-network.toml");
    writeFileSync(f, '[networks.a]\nsubnet = "10.1.0.0/24"\n');
    const parsed = new ParsedFiles();
    const one = parsed.load(f);
    expect(parsed.load(f)).toBe(one);
    writeFileSync(`${f}.tmp`, '[networks.b]\nsubnet = "10.2.0.0/24"\n');
    renameSync(`${f}.tmp`, f);
    const two = parsed.load(f);
    expect(Object.keys(two.lf.data.networks as object)).toEqual(["b"]);
    writeFileSync(f, '[networks.c]\nsubnet = "10.3.0.0/24"\nmtu = 1400\n');
    expect(Object.keys(parsed.load(f).lf.data.networks as object)).toEqual(["c"]);
  });

  it("a syntax error is reported on every load, and the fixed file loads", () => {
    const dir = mkdtempSync(join(tmpdir(), "bolt-parsed-"));
    const f = join(dir, "bolt-network.toml");
    writeFileSync(f, "[networks.a\n");
    const parsed = new ParsedFiles();
    expect(() => parsed.load(f)).toThrow(/TOML syntax error/);
    expect(() => parsed.load(f)).toThrow(/TOML syntax error/);
    writeFileSync(f, '[networks.a]\nsubnet = "10.1.0.0/24"\n');
    expect(parsed.load(f).schema()).toEqual([]);
  });
});
