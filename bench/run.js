#!/usr/bin/env node
// `npm run bench`: N networks with one endpoint each, created by bolt, by the hand-written
// `ip -batch` floor and by one `ip` process per command; see bench/README.md.
// Options: --sizes 10,100,1000  --runs K  --methods bolt,floor,floor-nsenter,perproc  --plans K  --no-breakdown
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { liveChildren, must, run } from "./lib/exec.js";
import { BENCH_PREFIX, createProbe, deleteAllBenchNetnsSync, deleteBenchNetns, settle } from "./lib/netns.js";
import { boltfile, topology } from "./lib/topology.js";
import { METHODS, boltArgv, boltNoopPlan, boltSeesNoChanges, captureReference } from "./lib/methods.js";
import { checkApplied, checkTornDown } from "./lib/check.js";
import { planPhases, readFloor } from "./lib/breakdown.js";
import { markdown, summarize, verdicts } from "./lib/report.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));

function parseArgs(argv) {
  const o = { sizes: [10, 100, 1000], runs: undefined, methods: ["bolt", "floor", "floor-nsenter", "perproc"], plans: 3, breakdown: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes("=") ? a.split("=")[1] : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a.startsWith("--sizes")) o.sizes = val().split(",").map(Number);
    else if (a.startsWith("--runs")) o.runs = Number(val());
    else if (a.startsWith("--methods")) o.methods = val().split(",");
    else if (a.startsWith("--plans")) o.plans = Number(val());
    else if (a === "--no-breakdown") o.breakdown = false;
    else if (a === "-h" || a === "--help") {
      process.stdout.write(
        "usage: node bench/run.js [--sizes 10,100,1000] [--runs K] [--methods bolt,floor,floor-nsenter,perproc] [--plans K] [--no-breakdown]\n",
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (o.sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error("--sizes: positive integers");
  for (const m of o.methods) if (!METHODS[m]) throw new Error(`--methods: unknown method ${m} (${Object.keys(METHODS).join(", ")})`);
  return o;
}

/** Default repeats: 3 up to N=100; 2 above; the per-process baseline once above N=100 (it takes minutes). */
function runsFor(o, n, method) {
  if (o.runs !== undefined) return o.runs;
  if (n <= 100) return 3;
  return method === "perproc" ? 1 : 2;
}

const log = (s) => process.stderr.write(s + "\n");
const tmpDirs = new Set();
/** Per N: bolt's nft table and ip_forward as bolt wrote them (see captureReference). */
const references = new Map();

function newCtx(method, n) {
  const target = `${BENCH_PREFIX}${method}-${n}`;
  const prefix = `${target}-`;
  const dir = mkdtempSync(join(tmpdir(), `bolt-bench-${method}-${n}-`));
  tmpDirs.add(dir);
  const items = topology(n, prefix);
  const ctx = { method, n, target, prefix, dir, items, stateDir: join(dir, "state"), boltfile: join(dir, "bolt-network.toml"), reference: references.get(n) };
  writeFileSync(ctx.boltfile, boltfile(items));
  return ctx;
}

async function dropCtx(ctx) {
  await deleteBenchNetns({ only: (name) => name === ctx.target || name.startsWith(ctx.prefix) });
  rmSync(ctx.dir, { recursive: true, force: true });
  tmpDirs.delete(ctx.dir);
}

/** When the floors run without a bolt run before them at this N: one untimed bolt apply to read the reference from. */
async function ensureReference(n) {
  if (references.has(n)) return;
  const ctx = newCtx("ref", n);
  try {
    log(`  N=${n}: one untimed bolt apply to read its nft table from`);
    await must(["ip", "netns", "add", ctx.target]);
    await must(boltArgv(ctx, "apply"));
    references.set(n, await captureReference(ctx.target));
  } finally {
    await dropCtx(ctx);
  }
}

async function measure(o, method, n, runIndex, probeMs, bigN) {
  if (method !== "bolt") await ensureReference(n);
  const ctx = newCtx(method, n);
  const { target } = ctx;
  const sample = { n, method, run: runIndex + 1 };
  try {
    const before = await settle(probeMs);
    sample.settleBeforeMs = before.ms;
    if (!before.settled) sample.unsettled = true;
    await must(["ip", "netns", "add", target]);
    METHODS[method].prepare?.(ctx);
    sample.applyMs = await METHODS[method].apply(ctx);
    await checkApplied(ctx);
    if (method === "bolt") {
      if (!references.has(n)) references.set(n, await captureReference(target));
      ctx.reference = references.get(n);
      sample.planMs = [];
      for (let i = 0; i < o.plans; i++) sample.planMs.push(await boltNoopPlan(ctx));
      if (o.breakdown && n === bigN && runIndex === 0) {
        log(`  N=${n}: measuring the read floor and the plan phases`);
        sample.breakdown = { n, readFloor: await readFloor(target), planPhases: await planPhases(ctx) };
      }
    } else if (runIndex === 0) {
      // Same objects as bolt's, or the comparison is void: bolt (with an empty state dir) must see nothing to do.
      sample.equivalencePlanMs = await boltSeesNoChanges(ctx, join(ctx.dir, "state-equivalence"));
    }
    sample.teardownMs = await METHODS[method].teardown(ctx);
    await checkTornDown(ctx);
    await must(["ip", "netns", "del", target]);
    const after = await settle(probeMs);
    sample.settleAfterMs = after.ms;
  } finally {
    await dropCtx(ctx);
  }
  const plan = sample.planMs ? `, no-op plan ${sample.planMs.map(Math.round).join("/")} ms` : sample.equivalencePlanMs ? ", bolt sees no changes" : "";
  const td = sample.teardownMs !== undefined ? `, teardown ${Math.round(sample.teardownMs)} ms` : "";
  log(
    `  N=${n} run ${runIndex + 1} ${method}: apply ${Math.round(sample.applyMs)} ms${plan}${td} (kernel settled ${(sample.settleAfterMs / 1000).toFixed(1)} s after)`,
  );
  return sample;
}

async function envInfo() {
  const v = await run(["ip", "-V"]);
  return {
    date: new Date().toISOString(),
    kernel: `Linux ${release()}`,
    cpus: cpus().length,
    node: process.version,
    iproute2: v.stdout.trim().replace(/^ip utility, /, ""),
    loadStart: loadavg(),
  };
}

function cleanupNow(code) {
  for (const c of liveChildren) {
    try {
      process.kill(c.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
  }
  const n = deleteAllBenchNetnsSync();
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
  log(`\ninterrupted: deleted ${n} bench namespace(s)`);
  process.exit(code);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("the benchmark creates network namespaces: run it as root");
  if (!existsSync(fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url))))
    throw new Error("dist/ is missing: run `npm run build` (npm run bench does)");
  // A closed stdout (piped into `head`) must not kill the process before its cleanup ran.
  process.stdout.on("error", () => {});
  process.on("SIGINT", () => cleanupNow(130));
  process.on("SIGTERM", () => cleanupNow(143));

  const env = await envInfo();
  const samples = [];
  let complete = false;
  const bigN = Math.max(...o.sizes);
  try {
    const stale = await deleteBenchNetns({ keepProbe: false });
    if (stale) log(`deleted ${stale} namespace(s) left by an earlier bench run`);
    const probeMs = await createProbe();
    log(`probe (veth add+del in ${BENCH_PREFIX}probe): ${probeMs.toFixed(1)} ms when idle`);
    for (const n of o.sizes) {
      const maxRuns = Math.max(...o.methods.map((m) => runsFor(o, n, m)));
      for (let r = 0; r < maxRuns; r++) {
        for (const m of o.methods) if (r < runsFor(o, n, m)) samples.push(await measure(o, m, n, r, probeMs, bigN));
      }
    }
    complete = true;
  } finally {
    await deleteBenchNetns({ keepProbe: false });
    env.loadEnd = loadavg();
    if (samples.length) {
      const rows = summarize(samples);
      const breakdown = samples.find((s) => s.breakdown)?.breakdown;
      const notes = [];
      if (!complete) notes.push("INCOMPLETE: the run stopped on an error; medians are over the samples taken.");
      const unsettled = samples.filter((s) => s.unsettled);
      if (unsettled.length)
        notes.push(`${unsettled.length} measurement(s) started before the kernel looked idle (settle timed out): other work on the machine.`);
      notes.push(
        "Other engineers may run kernel tests on this machine at the same time: numbers are noisy; compare ratios within a run, rerun the big N when a ratio looks off.",
      );
      const result = { complete, env, options: o, rows, verdicts: verdicts(rows), breakdown, samples: samples.map(({ breakdown: _b, ...s }) => s), notes };
      mkdirSync(RESULTS, { recursive: true });
      writeFileSync(join(RESULTS, "latest.json"), JSON.stringify(result, null, 2) + "\n");
      const md = markdown(result);
      writeFileSync(join(RESULTS, "latest.md"), md);
      process.stdout.write("\n" + md + "\n");
      log("written: bench/results/latest.json, bench/results/latest.md");
    }
  }
}

main().catch((e) => {
  log(`bench failed: ${e.stack ?? e}`);
  process.exitCode = 1;
});
