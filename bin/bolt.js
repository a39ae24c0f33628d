#!/usr/bin/env node
// Thin launcher for the bundled CLI (dist/cli/bolt.mjs, built by `npm ci` via the prepare script).
import { main } from "../dist/cli/bolt.mjs";
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
