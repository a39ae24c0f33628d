#!/usr/bin/env node
// Launcher for the bundled CLI (dist/cli/bolt.cjs, built by `npm ci` via the prepare script).
// `bolt --version` and `bolt --help` are answered here without loading the bundle: parsing and
// evaluating it (yargs and the command tree) costs more than node's own startup.
import { readFileSync } from "node:fs";

const argv = process.argv.slice(2);
const only = argv.length === 1 ? argv[0] : undefined;
if (only === "--version" || only === "version") {
  // The same file the bundle reads its VERSION from (src/cli/main.ts).
  process.stdout.write(`${JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version}\n`);
} else if (only === "--help" && !Object.keys(process.env).some((k) => k.startsWith("BOLT_"))) {
  // yargs' own output, captured by the build in an environment without BOLT_* variables (they
  // set option defaults the help shows); with one set, yargs renders it below.
  process.stdout.write(readFileSync(new URL("../dist/cli/help.txt", import.meta.url)));
} else {
  const { loadCli } = await import("./bundle-loader.js");
  process.exitCode = await loadCli().cli.main(argv);
}
