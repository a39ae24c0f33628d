#!/usr/bin/env node
// `npm run bench:ipv6`: the core benchmark's N networks with one endpoint each, IPv4-only and
// dual-stack side by side (same run, same machine state): bolt apply into a fresh namespace,
// then the no-op plan. Dual-stack adds per network an IPv6 gateway on the bridge, per endpoint
// an IPv6 address and default route inside, and the table's IPv6 sets and NAT66 rule.
// Options: --sizes 1000  --runs K
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { median, must } from "./lib/exec.js";
import { BENCH_PREFIX, createProbe, deleteAllBenchNetnsSync, deleteBenchNetns, settle } from "./lib/netns.js";
import { boltfile, topology } from "./lib/topology.js";
import { boltArgv, boltNoopPlan } from "./lib/methods.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const log = (s) => process.stderr.write(s + "\n");

function parseArgs(argv) {
  const o = { sizes: [1000], runs: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (a.includes("=") ? a.split("=")[1] : argv[++i]);
    if (a.startsWith("--sizes")) o.sizes = val().split(",").map(Number);
    else if (a.startsWith("--runs")) o.runs = Number(val());
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: node bench/ipv6.js [--sizes 1000] [--runs K]\n");
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (o.sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 65535)) throw new Error("--sizes: 1..65535");
  return o;
}

/** Network i's IPv6 prefix: fd42:<i>::/64 (one /64 each, as a person would hand them out). */
function dualStack(items) {
  const v4 = boltfile(items);
  return v4.replace(/^subnet = "(10\.(\d+)\.(\d+)\.0\/24)"$/gm, (line, _s, a, b) => {
    const i = (Number(a) - 128) * 256 + Number(b);
    return `${line}\nipv6 = { subnet = "fd42:${i.toString(16)}::/64" }`;
  });
}

/** Every endpoint has its IPv6 address, not tentative, and its IPv6 default route (checked on a sample). */
async function checkV6(ctx) {
  for (const t of [ctx.items[0], ctx.items[ctx.items.length >> 1], ctx.items[ctx.items.length - 1]]) {
    const a = JSON.parse((await must(["ip", "-n", t.netns, "-j", "-6", "addr", "show", "dev", "eth0"])).stdout);
    const g = (a[0]?.addr_info ?? []).filter((x) => x.scope === "global");
    if (g.length !== 1 || g[0].tentative) throw new Error(`${t.netns}: IPv6 address missing or tentative: ${JSON.stringify(g)}`);
    const r = JSON.parse((await must(["ip", "-n", t.netns, "-j", "-6", "route", "show", "default"])).stdout);
    if (r.length !== 1) throw new Error(`${t.netns}: no IPv6 default route`);
  }
}

async function once(variant, n, probeMs) {
  await settle(probeMs);
  const target = `${BENCH_PREFIX}v6-${variant}-${n}`;
  const prefix = `${target}-`;
  const dir = mkdtempSync(join(tmpdir(), `bolt-bench-v6-${variant}-`));
  const items = topology(n, prefix);
  const ctx = { target, prefix, dir, items, stateDir: join(dir, "state"), boltfile: join(dir, "bolt-network.toml") };
  writeFileSync(ctx.boltfile, variant === "dual" ? dualStack(items) : boltfile(items));
  try {
    await must(["ip", "netns", "add", target]);
    const apply = await must(boltArgv(ctx, "apply"));
    if (variant === "dual") await checkV6(ctx);
    const plans = [];
    for (let i = 0; i < 3; i++) plans.push(await boltNoopPlan(ctx));
    return { apply: apply.ms, plan: median(plans) };
  } finally {
    await deleteBenchNetns({ only: (name) => name === target || name.startsWith(prefix) });
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  process.on("SIGINT", () => {
    deleteAllBenchNetnsSync();
    process.exit(130);
  });
  const probeMs = await createProbe();
  const rows = [];
  try {
    for (const n of o.sizes)
      for (let r = 0; r < o.runs; r++)
        for (const variant of ["v4", "dual"]) {
          log(`N=${n} ${variant} run ${r + 1}/${o.runs}`);
          rows.push({ n, variant, ...(await once(variant, n, probeMs)) });
        }
  } finally {
    await deleteBenchNetns({ keepProbe: false });
  }
  const lines = [
    `# bolt IPv4-only vs dual-stack (${new Date().toISOString()}, ${cpus().length} CPUs, kernel ${release()}, load ${loadavg()[0].toFixed(2)})`,
    "",
    "| N | variant | apply ms (median) | no-op plan ms (median) | runs |",
    "|---|---|---|---|---|",
  ];
  for (const n of o.sizes)
    for (const variant of ["v4", "dual"]) {
      const rs = rows.filter((x) => x.n === n && x.variant === variant);
      lines.push(
        `| ${n} | ${variant === "v4" ? "IPv4 only" : "dual-stack"} | ${median(rs.map((x) => x.apply)).toFixed(0)} | ${median(rs.map((x) => x.plan)).toFixed(0)} | ${rs.length} |`,
      );
    }
  const md = lines.join("\n") + "\n";
  process.stdout.write(md);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, "ipv6-latest.md"), md);
  writeFileSync(join(RESULTS, "ipv6-latest.json"), JSON.stringify({ rows, probeMs }, null, 2) + "\n");
}

main().catch((e) => {
  log(String(e?.stack ?? e));
  deleteAllBenchNetnsSync();
  process.exit(1);
});
