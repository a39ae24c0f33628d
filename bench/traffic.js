#!/usr/bin/env node
// `npm run bench:traffic`: HTB trees for N endpoints (issue 13) — one `bolt apply` that gives
// every endpoint of a network an ingress cap and puts one traffic rule's class in every tree,
// against the hand-written floor: one `tc -batch` of the same qdisc/class lines, plus `nft -f`
// of bolt's table as bolt wrote it. The endpoints are taps (no namespace each), created before
// the clock starts; only the traffic-control change is timed. Options: --endpoints 1000 --runs 2
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { median, must } from "./lib/exec.js";
import { BENCH_PREFIX, createProbe, deleteAllBenchNetnsSync, deleteBenchNetns, settle } from "./lib/netns.js";
import { BOLT } from "./lib/methods.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const log = (s) => process.stderr.write(s + "\n");

function parseArgs(argv) {
  const o = { endpoints: 1000, runs: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => Number(a.includes("=") ? a.split("=")[1] : argv[++i]);
    if (a.startsWith("--endpoints")) o.endpoints = val();
    else if (a.startsWith("--runs")) o.runs = val();
    else throw new Error(`unknown option ${a} (--endpoints N --runs K)`);
  }
  return o;
}

function boltfile(o, shaped) {
  const out = ["[networks.bench]", 'subnet = "10.96.0.0/16"', ""];
  for (let i = 0; i < o.endpoints; i++) {
    out.push("[[endpoints]]", `name = "t${i}"`, 'network = "bench"', "tap = true");
    if (shaped) out.push('bandwidth = { ingress = "10mbit" }');
    out.push("");
  }
  if (shaped) out.push("[[traffic.rules]]", 'pattern = "udp:27015"', 'priority = "critical"', "");
  return out.join("\n");
}

/** What bolt's trees are, written by hand: root qdisc, root class, default and rule class, their leaves. */
function floorLines(devs) {
  const lines = [];
  for (const d of devs)
    lines.push(
      `qdisc add dev ${d} root handle b017: htb default 2`,
      `class add dev ${d} parent b017: classid b017:1 htb rate 10mbit ceil 10mbit`,
      `class add dev ${d} parent b017:1 classid b017:2 htb rate 5mbit ceil 10mbit prio 2`,
      `qdisc add dev ${d} parent b017:2 pfifo limit 1000`,
      `class add dev ${d} parent b017:1 classid b017:10 htb rate 5mbit ceil 10mbit prio 0`,
      `qdisc add dev ${d} parent b017:10 pfifo limit 1000`,
    );
  return lines;
}

async function once(o, probeMs, dir) {
  const res = {};
  const t = `${BENCH_PREFIX}tc`;
  // settle() deletes every bench namespace: only before this run's own exists.
  await settle(probeMs);
  await must(["ip", "netns", "add", t]);
  const argv = (cmd, file, ...x) => ["node", BOLT, cmd, "-f", join(dir, file), "--netns", t, "--state-dir", join(dir, "state"), ...x];
  try {
    await must(argv("apply", "plain.toml"));
    const taps = JSON.parse((await must(["ip", "-n", t, "-j", "link", "show", "master", "bolt-bench"])).stdout).map((l) => l.ifname);
    if (taps.length !== o.endpoints) throw new Error(`expected ${o.endpoints} taps, found ${taps.length}`);
    res.boltApply = (await must(argv("apply", "shaped.toml"))).ms;
    const plans = [];
    for (let i = 0; i < 3; i++) plans.push((await must(argv("plan", "shaped.toml", "--detailed-exitcode"))).ms);
    res.boltPlan = median(plans);
    const nft = (await must(["ip", "netns", "exec", t, "nft", "list", "table", "inet", "bolt"])).stdout;
    writeFileSync(join(dir, "bolt.nft"), nft);
    res.boltRemove = (await must(argv("apply", "plain.toml"))).ms;
    await must(["ip", "netns", "exec", t, "nft", "delete", "table", "inet", "bolt"]);
    const t0 = performance.now();
    await must(["ip", "netns", "exec", t, "tc", "-batch", "-"], { input: floorLines(taps).join("\n") + "\n" });
    await must(["ip", "netns", "exec", t, "nft", "-f", join(dir, "bolt.nft")]);
    res.floor = performance.now() - t0;
  } finally {
    await deleteBenchNetns({ only: (n) => n === t });
    rmSync(join(dir, "state"), { recursive: true, force: true });
  }
  return res;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  process.on("SIGINT", () => {
    deleteAllBenchNetnsSync();
    process.exit(130);
  });
  const dir = mkdtempSync(join(tmpdir(), "bolt-bench-tc-"));
  writeFileSync(join(dir, "plain.toml"), boltfile(o, false));
  writeFileSync(join(dir, "shaped.toml"), boltfile(o, true));
  const probeMs = await createProbe();
  const rows = [];
  try {
    for (let r = 0; r < o.runs; r++) {
      log(`run ${r + 1}/${o.runs}: ${o.endpoints} shaped endpoints`);
      rows.push(await once(o, probeMs, dir));
    }
  } finally {
    await deleteBenchNetns({ keepProbe: false });
    rmSync(dir, { recursive: true, force: true });
  }
  const m = (k) => median(rows.map((x) => x[k]));
  const md = [
    `# bolt traffic control (${new Date().toISOString()}, ${cpus().length} CPUs, kernel ${release()}, load ${loadavg()[0].toFixed(2)})`,
    "",
    `${o.endpoints} endpoints each get an HTB tree (root, default and one rule class, pfifo leaves: ${o.endpoints * 6} tc lines) and one nft traffic rule, median of ${rows.length} runs:`,
    "",
    "| what | ms | ratio to floor |",
    "|---|---|---|",
    `| floor: one \`tc -batch\` + \`nft -f\` of bolt's table | ${m("floor").toFixed(0)} | 1.00 |`,
    `| bolt apply adding the trees (CLI, fresh process) | ${m("boltApply").toFixed(0)} | ${(m("boltApply") / m("floor")).toFixed(2)} |`,
    `| bolt no-op plan | ${m("boltPlan").toFixed(0)} | ${(m("boltPlan") / m("floor")).toFixed(2)} |`,
    `| bolt apply removing them | ${m("boltRemove").toFixed(0)} | ${(m("boltRemove") / m("floor")).toFixed(2)} |`,
    "",
  ].join("\n");
  process.stdout.write(md);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, "traffic-latest.md"), md);
}

main().catch((e) => {
  log(String(e?.stack ?? e));
  deleteAllBenchNetnsSync();
  process.exit(1);
});
