// Build step: bundle the CLI into one ESM file. Node's ESM loader resolving hundreds of small
// modules (yargs, execa, pino, ajv runtime) costs more at startup than the plan itself.
import { build } from "esbuild";

await build({
  entryPoints: ["dist/src/cli/main.js"],
  outfile: "dist/cli/bolt.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // native addon: loaded from node_modules at run time,
  // and what is loaded on demand with require() (schema compiler fallback, YAML, pretty logs)
  external: ["better-sqlite3", "ajv", "ajv-formats", "yaml", "pino-pretty", "etcd3"],
  // bundled CommonJS dependencies call require(); give them one
  banner: { js: "import { createRequire as __boltCreateRequire } from 'node:module'; const require = __boltCreateRequire(import.meta.url);" },
  logLevel: "warning",
  minify: true,
  keepNames: true,
});
