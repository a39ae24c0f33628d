#!/usr/bin/env node
// The endpoint-namespace stage alone — one process per namespace configuring lo, eth0, its
// address and default route — driven four ways, to see what bounds it at large N:
//   node-ipn       node spawns `ip -n NS -batch F`, 8 in flight (what bolt does)
//   node-nsenter   node spawns `nsenter --net=/run/netns/NS ip -batch F`, 8 in flight
//   xargs-ipn      `xargs -P 8` runs `ip -n NS -batch F`
//   xargs-nsenter  `xargs -P 8` runs `nsenter --net=… ip -batch F` (the floor-nsenter method)
// Usage: node bench/endpoint-stage.js [--n 1000] [--runs 2] [--ways node-ipn,xargs-nsenter]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ip, median, must, pool } from "./lib/exec.js";
import { BENCH_PREFIX, createProbe, deleteAllBenchNetnsSync, deleteBenchNetns, settle } from "./lib/netns.js";
import { floorLines, floorTeardownLines, topology } from "./lib/topology.js";

const WAYS = {
  "node-ipn": (files) => pool(files, 8, (x) => must(["ip", "-n", x.ns, "-batch", x.file])),
  "node-nsenter": (files) => pool(files, 8, (x) => must(["nsenter", `--net=/run/netns/${x.ns}`, "ip", "-batch", x.file])),
  "xargs-ipn": (files) => must(["xargs", "-P", "8", "-L", "1", "ip"], { input: files.map((x) => `-n ${x.ns} -batch ${x.file}\n`).join("") }),
  "xargs-nsenter": (files) =>
    must(["xargs", "-P", "8", "-L", "1", "nsenter"], { input: files.map((x) => `--net=/run/netns/${x.ns} ip -batch ${x.file}\n`).join("") }),
};

function args(argv) {
  const o = { n: 1000, runs: 2, ways: Object.keys(WAYS) };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--n") o.n = Number(argv[++i]);
    else if (argv[i] === "--runs") o.runs = Number(argv[++i]);
    else if (argv[i] === "--ways") o.ways = argv[++i].split(",");
    else throw new Error("usage: node bench/endpoint-stage.js [--n 1000] [--runs 2] [--ways " + Object.keys(WAYS).join(",") + "]");
  }
  for (const w of o.ways) if (!WAYS[w]) throw new Error(`unknown way ${w}`);
  return o;
}

/** Namespaces and the target's bridges + veths as the floor makes them; then the timed stage; then a grouped teardown. */
async function once(n, way, dir) {
  const target = `${BENCH_PREFIX}stage-${n}`;
  const items = topology(n, `${target}-`);
  const f = floorLines(items);
  const files = f.inside.map((x, i) => {
    const file = join(dir, `${i}.batch`);
    writeFileSync(file, x.lines.join("\n") + "\n");
    return { ns: x.ns, file };
  });
  await must(["ip", "netns", "add", target]);
  try {
    await must(["ip", "-batch", "-"], { input: f.netnsAdd.join("\n") + "\n" });
    await must(ip(target, "-batch", "-"), { input: f.target.join("\n") + "\n" });
    const t0 = performance.now();
    await WAYS[way](files);
    return performance.now() - t0;
  } finally {
    const td = floorTeardownLines(items);
    await must(ip(target, "-force", "-batch", "-"), { input: td.target.join("\n") + "\n" }, [0, 1]);
    await deleteBenchNetns({ only: (name) => name === target || name.startsWith(`${target}-`) });
  }
}

async function main() {
  const o = args(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("run as root (network namespaces)");
  const dir = mkdtempSync(join(tmpdir(), "bolt-bench-stage-"));
  const stop = () => {
    deleteAllBenchNetnsSync();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  // A closed stdout (piped into `head`) must not kill the process before its cleanup ran.
  process.stdout.on("error", () => {});
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  try {
    const ms = Object.fromEntries(o.ways.map((w) => [w, []]));
    const probeMs = await createProbe();
    for (let r = 0; r < o.runs; r++) {
      for (const w of o.ways) {
        await settle(probeMs);
        const t = await once(o.n, w, dir);
        ms[w].push(t);
        process.stderr.write(`  run ${r + 1} ${w}: ${t.toFixed(0)} ms\n`);
      }
    }
    for (const w of o.ways)
      process.stdout.write(
        `${w.padEnd(14)} N=${o.n}: endpoint-namespace stage ${median(ms[w]).toFixed(0)} ms (median of ${o.runs}: ${ms[w].map((x) => x.toFixed(0)).join(", ")})\n`,
      );
  } finally {
    await deleteBenchNetns({ keepProbe: false, only: (name) => name === `${BENCH_PREFIX}probe` || name.startsWith(`${BENCH_PREFIX}stage-`) });
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`endpoint-stage failed: ${e.stack ?? e}\n`);
  process.exitCode = 1;
});
