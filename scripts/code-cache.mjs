// Build step, run by scripts/bundle.mjs in a fresh node without BOLT_* variables: runs the
// bundled CLI through a few offline commands, then writes
// - dist/cli/help.txt: `bolt --help` exactly as yargs prints it (bin/bolt.js serves it without
//   loading the bundle; BOLT_* variables change option defaults it shows, so it is made without them);
// - dist/cli/bolt.cjs.cache: V8's code cache of the bundle after those commands ran, so every
//   function they compiled is in it (what a cache made before running holds is the top level only).
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CODE_CACHE, loadCli } from "../bin/bundle-loader.js";

/** Written under a temporary name and renamed: a bolt starting meanwhile reads the old file or the new one. */
const replace = (file, data) => {
  writeFileSync(`${file}.${process.pid}.tmp`, data);
  renameSync(`${file}.${process.pid}.tmp`, file);
};
const example = (f) => fileURLToPath(new URL(`../examples/${f}`, import.meta.url));
const stateDir = mkdtempSync(join(tmpdir(), "bolt-build-"));
const { cli, codeCache } = loadCli({ useCache: false });

/** main(argv) with stdout captured and stderr dropped (warnings about example key files that do not exist here). */
async function run(argv) {
  const out = [];
  const [write, writeErr] = [process.stdout.write, process.stderr.write];
  process.stdout.write = (s) => out.push(String(s)) > 0;
  process.stderr.write = () => true;
  try {
    return { code: await cli.main(argv), out: out.join("") };
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
}

/** A warm-up command only compiles code: one that fails (an example this machine cannot check) leaves a smaller cache, not a broken build. */
async function warmUp(argv) {
  const { code } = await run(argv);
  if (code !== 0) process.stderr.write(`warning: code cache warm-up: bolt ${argv.join(" ")} exited ${code}; the cache holds less of what it runs\n`);
}

try {
  const { code, out: help } = await run(["--help"]);
  if (code !== 0 || !help.includes("Commands:")) throw new Error(`bolt --help (exit ${code}) printed no command list:\n${help}`);
  replace(fileURLToPath(new URL("../dist/cli/help.txt", import.meta.url)), help);
  // What a cold bolt runs most: validation of each file kind, an offline plan (config to rendered
  // plan, no kernel), the graph; each twice so V8 has compiled what the first run touched lazily.
  const boltfile = example("bolt-network.toml");
  for (let i = 0; i < 2; i++) {
    await warmUp(["validate", "-f", boltfile]);
    await warmUp(["validate", "-f", example("ghostwire.toml"), "-f", example("volantd.yaml")]);
    await warmUp(["plan", "-f", boltfile, "--state", "none", "--state-dir", stateDir]);
    await warmUp(["plan", "-f", boltfile, "--state", "none", "--state-dir", stateDir, "--json"]);
    await warmUp(["graph", "-f", boltfile]);
  }
  replace(CODE_CACHE, codeCache());
} finally {
  rmSync(stateDir, { recursive: true, force: true });
}
