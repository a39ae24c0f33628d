// Records live.json for one golden case from the REAL kernel: runs the same reads `bolt plan`
// makes (loadIntent + makePlan, from dist/) against netns bolt-t-golden and saves every
// command's output keyed by its argv. Refuses to write. Driven by record.sh, which builds the
// case's state with its setup.sh first and tears it down afterwards. The case folder's path is
// written as @CASE@ (the harness puts its own back), in live.json and read from case.json.
//   usage: node test/golden/record.mjs test/golden/cases/<case>
import { readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadIntent } from "../../dist/src/cli/config.js";
import { makePlan } from "../../dist/src/core/plan.js";
import { ProcessRunner } from "../../dist/src/exec/process-runner.js";
import { ReplayRunner } from "../../dist/src/exec/replay-runner.js";
import { RUN_DIR } from "../../dist/src/exec/run-dir.js";
import { REGISTRY } from "../../dist/reconcilers/registry.js";
import { emptyIntent } from "../../dist/src/core/intent.js";

const TARGET = "bolt-t-golden";
const PREFIX = "bolt-t-golden-";
const dir = resolve(process.argv[2] ?? "");
const opts = existsSync(join(dir, "case.json")) ? JSON.parse(readFileSync(join(dir, "case.json"), "utf8").replaceAll("@CASE@", dir)) : {};
const files = readdirSync(dir)
  .filter((f) => /\.(toml|ya?ml)$/.test(f))
  .sort()
  .map((f) => join(dir, f));
const intent = opts.destroy ? emptyIntent() : loadIntent(files, PREFIX).intent;

const real = new ProcessRunner();
const recorded = {};
const runner = {
  async run(argv, stdin) {
    // A batch of reads (`tc -j -batch -` of show lines) is recorded line by line, as the replay answers it.
    if (ReplayRunner.isReadBatch(argv, stdin)) {
      const head = argv.slice(0, argv.indexOf("-batch")).filter((a) => a !== "-force");
      let stdout = "";
      for (const line of stdin.split("\n").filter((l) => l.trim())) stdout += (await this.run([...head, ...line.split(" ")])).stdout;
      return { code: 0, stdout, stderr: "" };
    }
    if (ReplayRunner.isWrite(argv)) throw new Error(`recording must not write: ${argv.join(" ")}`);
    const r = await real.run(argv, stdin);
    let stdout = r.stdout;
    // The host's namespace list is shared with everyone: keep only this case's namespaces.
    if (argv.join(" ") === "ip -j netns list" && stdout.trim()) {
      stdout = JSON.stringify(JSON.parse(stdout).filter((n) => n.name === TARGET || n.name.startsWith(PREFIX))) + "\n";
    }
    recorded[argv.join(" ")] = { stdout, ...(r.stderr ? { stderr: r.stderr } : {}), ...(r.code ? { code: r.code } : {}) };
    return { ...r, stdout };
  },
};
await makePlan({
  intent,
  runner,
  target: TARGET,
  registry: REGISTRY,
  leases: new Map(Object.entries(opts.leases ?? {})),
  originals: new Map(Object.entries(opts.originals ?? {})),
  destroy: !!opts.destroy,
});
const sorted = Object.fromEntries(Object.entries(recorded).sort(([a], [b]) => a.localeCompare(b)));
writeFileSync(join(dir, "live.json"), (JSON.stringify(sorted, null, 2) + "\n").replaceAll(dir, "@CASE@").replaceAll(RUN_DIR(), "@RUN@"));
console.log(`recorded ${Object.keys(sorted).length} reads into ${join(dir, "live.json")}`);
