// The cold-start shortcuts must not change what bolt prints: `--version` and `--help` answered by
// bin/bolt.js without the bundle, the help text the build captured from yargs, the code cache
// the bundle is compiled from, and what a command loads (validate: no SQLite, no schema compiler).
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = join(ROOT, "bin", "bolt.js");
const BUNDLE = join(ROOT, "dist", "cli", "bolt.cjs");
const EXAMPLE = join(ROOT, "examples", "bolt-network.toml");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
/** The environment bolt sees, without the BOLT_* variables that change option defaults in the help. */
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BOLT_")));

const bolt = (args: string[], env: NodeJS.ProcessEnv = CLEAN_ENV) => spawnSync(process.execPath, [BIN, ...args], { env, encoding: "utf8" });

/**
 * What main(argv) prints on stdout, run from the source (not the build). yargs prints help and
 * version with console.log, which vitest intercepts before it reaches process.stdout.
 */
async function stdoutOf(argv: string[]): Promise<string> {
  const out: string[] = [];
  const { write } = process.stdout;
  const { log } = console;
  process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
  console.log = (...args: unknown[]) => out.push(`${args.join(" ")}\n`);
  try {
    expect(await main(argv)).toBe(0);
  } finally {
    process.stdout.write = write;
    console.log = log;
  }
  return out.join("");
}

/** yargs' own `--help`, without the BOLT_* variables that change the defaults it shows. */
async function yargsHelp(): Promise<string> {
  const saved = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("BOLT_")));
  for (const k of Object.keys(saved)) delete process.env[k];
  try {
    return await stdoutOf(["--help"]);
  } finally {
    Object.assign(process.env, saved);
  }
}

const tmp = mkdtempSync(join(tmpdir(), "bolt-startup-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("bolt --version", () => {
  it("prints package.json's version and exits 0 through the real bin, as --version and as a command", () => {
    for (const args of [["--version"], ["version"]]) {
      const r = bolt(args);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${VERSION}\n`);
      expect(r.stderr).toBe("");
    }
  });

  it("is the same through yargs (main) as through the launcher", async () => {
    for (const argv of [["version"], ["--version"], ["plan", "--version"]]) expect(await stdoutOf(argv)).toBe(`${VERSION}\n`);
  });
});

describe("bolt --help", () => {
  it("is yargs' own output, byte for byte, and lists every command main.ts registers", async () => {
    const fromYargs = await yargsHelp();
    const r = bolt(["--help"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout, "bin/bolt.js --help (dist/cli/help.txt) differs from yargs' output: a stale build? (npm run build)").toBe(fromYargs);
    const registered = [...readFileSync(join(ROOT, "src", "cli", "main.ts"), "utf8").matchAll(/\.command\(\s*"([^"]+)"/g)].map((m) => m[1]!);
    expect(registered.length).toBeGreaterThan(10);
    for (const c of registered) expect(r.stdout).toContain(`  bolt ${c} `);
  });

  it("is rendered by yargs when a BOLT_* variable changes a default it shows", () => {
    const r = bolt(["--help"], { ...CLEAN_ENV, BOLT_STATE_DIR: join(tmp, "elsewhere") });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`[default: "${join(tmp, "elsewhere")}"]`);
    expect(r.stdout).toContain("  bolt validate ");
  });

  it("of a command still comes from yargs", () => {
    const r = bolt(["plan", "--help"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("--detailed-exitcode");
  });
});

describe("the code-cached bundle", () => {
  const load = async (bundle: string) => (await import("../../bin/bundle-loader.js")).loadCli({ bundle });

  it("is compiled from the build's cache", async () => {
    const { cacheUsed, cli } = await load(BUNDLE);
    expect(cacheUsed).toBe(true);
    expect(typeof cli.main).toBe("function");
  });

  it("ignores a cache made from another source (V8 itself checks only the length)", async () => {
    const bundle = join(tmp, "bolt.cjs");
    const source = readFileSync(BUNDLE, "utf8");
    // Same length, one identifier changed: what V8 alone would accept and run wrongly.
    const i = source.indexOf("packageVersion");
    expect(i).toBeGreaterThan(0);
    writeFileSync(bundle, `${source.slice(0, i)}PackageVersion${source.slice(i + "packageVersion".length)}`);
    copyFileSync(`${BUNDLE}.cache`, `${bundle}.cache`);
    const { cacheUsed, cli } = await load(bundle);
    expect(cacheUsed).toBe(false);
    expect(typeof cli.main).toBe("function");
  });

  it("loads without a cache", async () => {
    const bundle = join(tmp, "no-cache.cjs");
    copyFileSync(BUNDLE, bundle);
    expect((await load(bundle)).cacheUsed).toBe(false);
  });
});

describe("what a command loads", () => {
  /** What of node_modules is in require's cache (package/path) after `bolt ARGS` ran in a fresh node. */
  const loaded = (args: string[]): string[] => {
    const script = `
      import { createRequire } from "node:module";
      const { loadCli } = await import(process.argv[1]);
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = () => true;
      const code = await loadCli().cli.main(JSON.parse(process.argv[2]));
      const mods = Object.keys(createRequire(import.meta.url).cache).map((k) => k.split("/node_modules/").pop());
      write(JSON.stringify({ code, mods }));
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, join(ROOT, "bin", "bundle-loader.js"), JSON.stringify(args)], {
      env: CLEAN_ENV,
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    const { code, mods } = JSON.parse(r.stdout) as { code: number; mods: string[] };
    expect(code).toBe(0);
    return mods;
  };
  const pkg = (mods: string[], name: string) => mods.filter((m) => m.startsWith(`${name}/`));

  it("validate: no SQLite, no schema compiler (the validators' ajv runtime only), no etcd client, no YAML parser for a TOML file", () => {
    const mods = loaded(["validate", "-f", EXAMPLE]);
    expect(mods.some((m) => m.startsWith("ajv/dist/runtime/"))).toBe(true);
    expect(pkg(mods, "ajv").filter((m) => !m.startsWith("ajv/dist/runtime/"))).toEqual([]);
    for (const m of ["better-sqlite3", "ajv-formats", "etcd3", "yaml", "pino-pretty"]) expect(pkg(mods, m)).toEqual([]);
  });

  it("an offline plan without a store: no SQLite, no schema compiler, no etcd client", () => {
    const mods = loaded(["plan", "-f", EXAMPLE, "--state", "none", "--state-dir", join(tmp, "no-store")]);
    expect(pkg(mods, "ajv").filter((m) => !m.startsWith("ajv/dist/runtime/"))).toEqual([]);
    for (const m of ["better-sqlite3", "etcd3", "pino-pretty"]) expect(pkg(mods, m)).toEqual([]);
  });
});
