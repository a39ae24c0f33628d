// Build step: bundle the CLI into one file, dist/cli/bolt.cjs, then its V8 code cache and
// help text (scripts/code-cache.mjs). Node's ESM loader resolving hundreds of small modules
// (yargs, execa, pino, ajv runtime) costs more at startup than the plan itself, and on Node 20
// only a script (not an ES module) can be compiled from a code cache (bin/bundle-loader.js):
// the cache saves most of what parsing and compiling the bundle costs. The command modules
// main.ts imports with import() become lazily initialised modules inside the one file, so a
// command evaluates only what it uses (validate: no SQLite, watch daemon or etcd admin).
import { spawnSync } from "node:child_process";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { build } from "esbuild";

const OUT = "dist/cli/bolt.cjs";
const built = await build({
  entryPoints: ["dist/src/cli/main.js"],
  outfile: OUT,
  write: false,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  // native addon: loaded from node_modules at run time,
  // and what is loaded on demand with require() (schema compiler fallback, YAML, pretty logs)
  external: ["better-sqlite3", "ajv", "ajv-formats", "yaml", "pino-pretty", "etcd3"],
  // The sources are ES modules that find files next to themselves with import.meta.url.
  define: { "import.meta.url": "__boltImportMetaUrl" },
  banner: { js: 'var __boltImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  // import() of an external (pino-pretty) as require(): a vm.Script has no ES module loader to hand it to.
  supported: { "dynamic-import": false },
  plugins: [lazyModules()],
  logLevel: "warning",
  // BOLT_BUNDLE_MINIFY=0: readable names in CPU profiles (node --cpu-prof bin/bolt.js …)
  minify: process.env.BOLT_BUNDLE_MINIFY !== "0",
  keepNames: true,
});
// Replaced by a rename, never rewritten in place: another bolt starting meanwhile (tests run
// while someone builds) reads the old file or the new one, not half of each. The old cache may
// stay until code-cache.mjs replaces it: bin/bundle-loader.js ignores a cache of other source.
mkdirSync("dist/cli", { recursive: true });
writeFileSync(`${OUT}.${process.pid}.tmp`, built.outputFiles[0].contents);
renameSync(`${OUT}.${process.pid}.tmp`, OUT);
// What builds before this one wrote (an ES module bundle and its chunks).
for (const f of ["dist/cli/bolt.mjs", "dist/cli/chunks"]) rmSync(f, { recursive: true, force: true });

/**
 * Modules evaluated on first use instead of at startup, each imported through a stand-in:
 * - better-sqlite3 is required when the first database is opened: commands that never open the
 *   store (validate, graph, plan without one) skip its ~7 ms. The stand-in is a Proxy that
 *   constructs, and reads statics from, the real class.
 * - string-width (yargs' and cliui's copies) creates an Intl.Segmenter and compiles Unicode
 *   property regexes (\p{RGI_Emoji}) as it loads, most of what evaluating the bundle's top level
 *   cost (~20 ms); only rendering help text calls it. The stand-in requires the real module,
 *   which esbuild then bundles as a module initialised on first require.
 */
function lazyModules() {
  return {
    name: "lazy-modules",
    setup(b) {
      b.onResolve({ filter: /^better-sqlite3$/ }, (args) =>
        args.namespace === "lazy-sqlite" ? { path: "better-sqlite3", external: true } : { path: "better-sqlite3", namespace: "lazy-sqlite" },
      );
      b.onLoad({ filter: /.*/, namespace: "lazy-sqlite" }, () => ({
        loader: "js",
        contents: `let real;
const load = () => (real ??= require("better-sqlite3"));
export default new Proxy(function Database() {}, {
  construct: (_t, args) => new (load())(...args),
  apply: (_t, self, args) => load().apply(self, args),
  get: (_t, key) => load()[key],
  has: (_t, key) => key in load(),
});`,
      }));
      b.onResolve({ filter: /^string-width$/ }, async (args) => {
        if (args.pluginData?.real) return undefined;
        const real = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { real: true } });
        return real.errors.length ? { errors: real.errors } : { path: real.path, namespace: "lazy-string-width" };
      });
      b.onLoad({ filter: /.*/, namespace: "lazy-string-width" }, (args) => ({
        loader: "js",
        resolveDir: dirname(args.path),
        contents: `let real;
export default function stringWidth(...args) {
  return (real ??= require(${JSON.stringify(args.path)}).default)(...args);
}`,
      }));
    },
  };
}

// help.txt and the code cache, from the bundle just built, in an environment without BOLT_*
// variables (they set option defaults the help shows; bin/bolt.js falls back to yargs when one is set).
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BOLT_")));
const r = spawnSync(process.execPath, [new URL("./code-cache.mjs", import.meta.url).pathname], { env, stdio: "inherit" });
if (r.status !== 0) throw new Error(`scripts/code-cache.mjs failed (exit ${r.status ?? r.signal})`);
