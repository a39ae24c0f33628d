// The import boundaries the design relies on, checked on the source: a new kind that reaches
// into another kind without declaring it in `uses`, or a core module that learns about a
// kind, fails here instead of in review.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { RECONCILERS } from "../../reconcilers/registry.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SRC = join(ROOT, "src");
const KINDS = join(ROOT, "reconcilers");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Every relative import of a file, resolved to a path inside the repository. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^"';]*?from\s+"(\.[^"]+)"/g)) out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, ".ts")));
  for (const m of text.matchAll(/import\(\s*"(\.[^"]+)"\s*\)/g)) out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, ".ts")));
  return out;
}

/** The layer a path belongs to: src/<layer>/…, or the kind folder reconcilers/<kind>/… (reconcilers/registry.ts is "registry"). */
function layerOf(p: string): string {
  const rel = relative(ROOT, p).split("/");
  if (rel[0] === "reconcilers") return rel.length > 2 ? `kind:${rel[1]}` : "registry";
  return rel[0] === "src" ? rel[1]! : rel[0]!;
}

const ALLOWED: Record<string, string[]> = {
  base: [],
  exec: ["base"],
  state: ["base", "exec"],
  config: ["base", "exec", "core"],
  core: ["base", "exec", "state", "config"],
  watch: ["base", "exec", "state", "config", "core"],
  registry: ["base", "exec", "state", "config", "core"],
};

const violations: string[] = [];
for (const f of [...files(SRC), ...files(KINDS)]) {
  const from = layerOf(f);
  for (const target of imports(f)) {
    const to = layerOf(target);
    if (to === from) continue;
    const rule = ALLOWED[from];
    // The registry is where kinds are listed: it alone imports every kind.
    if (from === "registry" && to.startsWith("kind:")) continue;
    if (rule && !rule.includes(to)) violations.push(`${relative(ROOT, f)} (${from}) imports ${relative(ROOT, target)} (${to})`);
  }
}

describe("layering", () => {
  it("base, exec, state, config, core and watch import only the layers below them (never a kind, never the CLI)", () => {
    expect(violations).toEqual([]);
  });

  it("a kind imports another kind only when it declares it in `uses`", () => {
    const uses = new Map(RECONCILERS.map((r) => [r.kind, new Set(r.uses ?? [])]));
    const bad: string[] = [];
    for (const dir of readdirSync(KINDS).filter((d) => statSync(join(KINDS, d)).isDirectory())) {
      expect(uses.has(dir), `reconcilers/${dir}/ is no registered kind (one folder per kind)`).toBe(true);
      for (const f of files(join(KINDS, dir))) {
        for (const target of imports(f)) {
          const to = layerOf(target);
          if (to === `kind:${dir}`) continue;
          if (to.startsWith("kind:") && !uses.get(dir)!.has(to.slice(5)))
            bad.push(`${relative(ROOT, f)} imports ${relative(ROOT, target)} but kind "${dir}" does not declare uses: ["${to.slice(5)}"]`);
          if (to === "cli" || to === "watch") bad.push(`${relative(ROOT, f)} imports ${relative(ROOT, target)} (a kind never imports the ${to})`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it("every registered kind has its own folder", () => {
    for (const r of RECONCILERS) expect(statSync(join(KINDS, r.kind)).isDirectory(), r.kind).toBe(true);
  });

  it("the check sees imports (it would catch a violation)", () => {
    expect(imports(join(SRC, "core/plan.ts")).some((p) => p.endsWith("core/diff.ts"))).toBe(true);
    expect(layerOf(join(KINDS, "nft/index.ts"))).toBe("kind:nft");
    expect(layerOf(join(SRC, "core/plan.ts"))).toBe("core");
  });
});
