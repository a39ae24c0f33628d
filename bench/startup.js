#!/usr/bin/env node
// `npm run bench:startup`: what a cold `bolt` process costs before it does any work. Median of
// --runs fresh processes each (default 15) of `node -e 0`, `bolt --version`, `bolt --help`,
// `bolt validate` and `bolt plan` of examples/bolt-network.toml against a fresh, empty namespace
// (with no state store, and with an empty one so SQLite is opened), run round-robin so a burst
// of load from elsewhere on the machine hits every command alike. Then how much of that plan is
// startup: the same plan run again inside one warm process costs only the work itself. With
// `perf` installed, a second round-robin pass takes each process's CPU time (perf stat's
// task-clock: all its threads), which another job's load on the machine disturbs far less than wall time.
// Writes bench/results/startup-latest.md (and .json). Options: --runs K, and --compare NAME=DIR
// (repeatable): the bolt commands also through DIR/bin/bolt.js (another built checkout, e.g. the
// commit before a change), interleaved with this one's, so both see the same machine load.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { median, must, run, runSync } from "./lib/exec.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const EXAMPLE = join(ROOT, "examples", "bolt-network.toml");
const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
/** The one namespace this benchmark makes; only it is ever deleted. */
const NS = "bolt-t-bench-startup";
const log = (s) => process.stderr.write(s + "\n");

function parseArgs(argv) {
  const o = { runs: 15, compare: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--runs") o.runs = Number(argv[++i]);
    else if (a.startsWith("--runs=")) o.runs = Number(a.slice(7));
    else if (a === "--compare") {
      const [name, dir] = String(argv[++i]).split("=");
      if (!name || !dir) throw new Error("--compare NAME=DIR");
      o.compare.push({ name, dir });
    } else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: node bench/startup.js [--runs K] [--compare NAME=DIR]…   (K >= 10; root for the plan rows)\n");
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 10) throw new Error("--runs: at least 10");
  return o;
}

const nsExists = () => {
  const r = runSync(["ip", "-j", "netns", "list"]);
  return r.code === 0 && r.stdout.trim() !== "" && JSON.parse(r.stdout).some((n) => n.name === NS);
};
/** CPU ms of one run of argv, from `perf stat` (undefined when perf is missing or not permitted). */
async function cpuMs(argv) {
  const r = await run(["perf", "stat", "-x,", "-e", "task-clock", "--", ...argv]).catch(() => undefined);
  const line = r?.stderr
    .trim()
    .split("\n")
    .find((l) => l.includes(",task-clock,"));
  return line ? Number(line.split(",")[0]) : undefined;
}

/**
 * The namespace, made again if it is gone: another benchmark's cleanup deletes every
 * bolt-t-bench-* namespace (bench/lib/netns.js), and a plan of a missing target only errors.
 */
const ensureNs = () => {
  if (nsExists()) return;
  const r = runSync(["ip", "netns", "add", NS]);
  if (r.code !== 0 && !nsExists()) throw new Error(`ip netns add ${NS}: ${r.stderr.trim()}`);
};

const deleteNs = () => {
  if (nsExists()) runSync(["ip", "netns", "del", NS]);
};

/**
 * One process: load the CLI as bin/bolt.js does, run the plan once cold, then `warm` more times.
 * The warm runs pay only the work (config load, validation, kernel reads, diff, render): modules,
 * validators and the SQLite addon are loaded and the code is compiled. A checkout from before
 * the code-cached bundle (bin/bundle-loader.js) has an ES module bundle, dist/cli/bolt.mjs.
 */
const WARM_SCRIPT = `
import { existsSync } from "node:fs";
const [dir, warm, ...argv] = process.argv.slice(1);
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = () => true;
const boot = performance.now();
const t0 = performance.now();
const loader = dir + "/bin/bundle-loader.js";
const { main } = existsSync(loader) ? (await import(loader)).loadCli().cli : await import(dir + "/dist/cli/bolt.mjs");
const imported = performance.now() - t0;
const t1 = performance.now();
const code = await main(argv);
const cold = performance.now() - t1;
const warmMs = [];
for (let i = 0; i < Number(warm); i++) {
  const t = performance.now();
  await main(argv);
  warmMs.push(performance.now() - t);
}
process.stdout.write = write;
write(JSON.stringify({ boot, imported, cold, warmMs, code }) + "\\n");
`;

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const root = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), "bolt-bench-startup-"));
  const noStore = join(dir, "no-store");
  const emptyStore = join(dir, "store");
  const planArgs = (stateDir) => ["plan", "-f", EXAMPLE, "--netns", NS, "--state-dir", stateDir];
  const variants = [{ name: o.compare.length ? "this checkout" : "bolt", dir: ROOT }, ...o.compare];
  for (const v of variants) if (!existsSync(join(v.dir, "bin", "bolt.js"))) throw new Error(`${v.dir}: no bin/bolt.js`);
  const commands = [
    { name: "bolt --version", args: ["--version"] },
    { name: "bolt --help", args: ["--help"] },
    { name: "bolt validate -f examples/bolt-network.toml", args: ["validate", "-f", EXAMPLE] },
  ];
  if (root) {
    commands.push({ name: `bolt plan -f examples/bolt-network.toml --netns ${NS} (no state store)`, args: planArgs(noStore) });
    commands.push({ name: "bolt plan … (empty state store: SQLite opened)", args: planArgs(emptyStore) });
  } else log("not root: no namespace, so no plan rows");
  const baseline = { name: "node -e 0", argv: ["node", "-e", "0"], ms: [], cpu: [] };
  const cells = [baseline];
  for (const c of commands)
    for (const v of variants)
      cells.push({ command: c.name, variant: v.name, own: v.dir === ROOT, argv: ["node", join(v.dir, "bin", "bolt.js"), ...c.args], ms: [], cpu: [] });
  process.on("SIGINT", () => {
    if (root) deleteNs();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
  const loadBefore = loadavg();
  const phases = {};
  try {
    if (root) {
      // A leftover of an interrupted run of this benchmark (same name) is replaced, never reused.
      deleteNs();
      ensureNs();
      // `bolt rollback` with nothing to undo creates an empty store (leases, journal, history tables).
      await must(["node", join(ROOT, "bin", "bolt.js"), "rollback", "--netns", NS, "--state-dir", emptyStore]);
    }
    for (const c of cells) {
      const r = await run(c.argv);
      // A plan of a fresh namespace has changes (exit 0 without --detailed-exitcode); anything else is a broken
      // build. An older checkout may lack a command (`--version` before it existed): timed, marked with its exit.
      if (r.code !== 0 && c.own !== false) throw new Error(`${c.argv.join(" ")}: exit ${r.code}\n${r.stderr.trim()}`);
      c.exit = r.code;
    }
    for (let i = 0; i < o.runs; i++) {
      log(`run ${i + 1}/${o.runs}`);
      if (root) ensureNs();
      for (const c of cells) c.ms.push((await run(c.argv)).ms);
    }
    if ((await cpuMs(baseline.argv)) !== undefined)
      for (let i = 0; i < o.runs; i++) {
        log(`cpu run ${i + 1}/${o.runs}`);
        if (root) ensureNs();
        for (const c of cells) c.cpu.push(await cpuMs(c.argv));
      }
    else log("no `perf stat`: wall time only");
    if (root)
      for (let i = 0; i < o.runs; i++)
        for (const v of variants) {
          ensureNs();
          const r = await must(["node", "--input-type=module", "-e", WARM_SCRIPT, v.dir, "5", ...planArgs(emptyStore)]);
          (phases[v.name] ??= []).push(JSON.parse(r.stdout.trim().split("\n").pop()));
        }
  } finally {
    if (root) deleteNs();
    rmSync(dir, { recursive: true, force: true });
  }
  const base = median(baseline.ms);
  const fmt = (x) => x.toFixed(1);
  const cell = (command, variant) => cells.find((c) => c.command === command && c.variant === variant);
  const lines = [
    `# bolt cold start (${new Date().toISOString()}, node ${process.versions.node}, ${cpus().length} CPUs, kernel ${release()}, load ${loadBefore[0].toFixed(2)} → ${loadavg()[0].toFixed(2)})`,
    "",
    `Wall time of a fresh process, spawn to exit: median (min) ms of ${o.runs} runs each, round-robin; × = ratio of medians to \`node -e 0\`.`,
    "",
    `| command | ${variants.map((v) => `${v.name} ms | ×`).join(" | ")} |`,
    `|---|${variants.map(() => "---:|---:").join("|")}|`,
    `| \`node -e 0\` | ${variants.map(() => `${fmt(base)} (${fmt(Math.min(...baseline.ms))}) | 1.00`).join(" | ")} |`,
  ];
  for (const c of commands)
    lines.push(
      `| \`${c.name}\` | ${variants
        .map((v) => {
          const { ms, exit } = cell(c.name, v.name);
          return `${fmt(median(ms))} (${fmt(Math.min(...ms))})${exit ? ` exit ${exit}` : ""} | ${(median(ms) / base).toFixed(2)}`;
        })
        .join(" | ")} |`,
    );
  if (baseline.cpu.length) {
    const cpuBase = median(baseline.cpu);
    lines.push(
      "",
      `CPU time of each process (perf stat task-clock, all threads): median (min) ms of ${o.runs} runs each, round-robin; × = ratio to \`node -e 0\`.`,
      "",
      `| command | ${variants.map((v) => `${v.name} CPU ms | ×`).join(" | ")} |`,
      `|---|${variants.map(() => "---:|---:").join("|")}|`,
      `| \`node -e 0\` | ${variants.map(() => `${fmt(cpuBase)} (${fmt(Math.min(...baseline.cpu))}) | 1.00`).join(" | ")} |`,
    );
    for (const c of commands)
      lines.push(
        `| \`${c.name}\` | ${variants
          .map((v) => {
            const { cpu } = cell(c.name, v.name);
            return `${fmt(median(cpu))} (${fmt(Math.min(...cpu))}) | ${(median(cpu) / cpuBase).toFixed(2)}`;
          })
          .join(" | ")} |`,
      );
  }
  const summary = {};
  if (root) {
    const planCmd = commands[commands.length - 1].name;
    lines.push(
      "",
      `How much of that plan (empty state store) is startup: one process loads the CLI as bin/bolt.js does, runs the plan once, then 5 times more warm (medians of ${o.runs} such processes per column, wall time inside the process). Startup is what a fresh \`bolt plan\` costs more than the same plan in a warm process:`,
      "",
      `| part | ${variants.map((v) => `${v.name} ms`).join(" | ")} |`,
      `|---|${variants.map(() => "---:").join("|")}|`,
    );
    for (const v of variants) {
      const s = phases[v.name];
      const wall = median(cell(planCmd, v.name).ms);
      const warm = median(s.flatMap((x) => x.warmMs));
      summary[v.name] = {
        boot: median(s.map((x) => x.boot)),
        imported: median(s.map((x) => x.imported)),
        cold: median(s.map((x) => x.cold)),
        warm,
        wall,
      };
      summary[v.name].startup = wall - warm;
    }
    const row = (label, f) => lines.push(`| ${label} | ${variants.map((v) => f(summary[v.name])).join(" | ")} |`);
    row("node itself, until the first line of user code", (x) => fmt(x.boot));
    row("loading the CLI (what runs before main)", (x) => fmt(x.imported));
    row("first main(plan): modules it imports lazily, validators, SQLite addon, compiling, and the work", (x) => fmt(x.cold));
    row("a warm main(plan): the work alone", (x) => fmt(x.warm));
    row("`bolt plan`, spawn to exit (table above)", (x) => fmt(x.wall));
    row("**startup: `bolt plan` − a warm main(plan)**", (x) => `**${fmt(x.startup)}** (${((100 * x.startup) / x.wall).toFixed(0)} %)`);
  }
  const md = lines.join("\n") + "\n";
  process.stdout.write(md);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, "startup-latest.md"), md);
  writeFileSync(join(RESULTS, "startup-latest.json"), JSON.stringify({ runs: o.runs, variants, cells, phases, summary }, null, 2) + "\n");
}

main().catch((e) => {
  log(String(e?.stack ?? e));
  if (process.getuid?.() === 0) deleteNs();
  process.exit(1);
});
