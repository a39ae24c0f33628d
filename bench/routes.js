#!/usr/bin/env node
// `npm run bench:routes`: N static routes and P routing policies (issue 12) — bolt apply into a
// fresh namespace and its no-op plan, against the hand-written floor: one `ip -batch` of the
// same routes, rules and policy tables, plus `nft -f` of bolt's own table (its marks) as bolt
// wrote it. Options: --routes 10000 --policies 999 --runs 2
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { median, must } from "./lib/exec.js";
import { BENCH_PREFIX, createProbe, deleteAllBenchNetnsSync, deleteBenchNetns, settle } from "./lib/netns.js";
import { BOLT } from "./lib/methods.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const log = (s) => process.stderr.write(s + "\n");
const GW = "10.255.0.2";

function parseArgs(argv) {
  const o = { routes: 10000, policies: 999, runs: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => Number(a.includes("=") ? a.split("=")[1] : argv[++i]);
    if (a.startsWith("--routes")) o.routes = val();
    else if (a.startsWith("--policies")) o.policies = val();
    else if (a.startsWith("--runs")) o.runs = val();
    else throw new Error(`unknown option ${a} (--routes N --policies P --runs K)`);
  }
  if (o.policies > 999) throw new Error("--policies: at most 999 (bolt's rule-priority band)");
  return o;
}

/** Route i: a /24 carved from 172.16.0.0/12 upwards. */
const dst = (i) => {
  const n = (172 << 24) + (16 << 16) + i * 256;
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.0/24`;
};

function boltfile(o) {
  const out = [];
  for (let i = 0; i < o.routes; i++) out.push("[[routing.routes]]", `destination = "${dst(i)}"`, `gateway = "${GW}"`, "");
  for (let i = 0; i < o.policies; i++)
    out.push("[[routing.policies]]", `name = "p${i}"`, 'protocol = "udp"', `dest_ports = "${20000 + i}"`, `gateway = "${GW}"`, "");
  return out.join("\n");
}

/** The floor's lines: what bolt's kernel state is, written by hand in one ip process. */
function floorLines(o) {
  const lines = [];
  for (let i = 0; i < o.routes; i++) lines.push(`route add ${dst(i)} via ${GW} table main proto 176`);
  for (let i = 0; i < o.policies; i++) {
    lines.push(`route add default via ${GW} table ${20200 + i} proto 176`);
    lines.push(`rule add priority ${23000 + i} fwmark 0x${(0x0c000001 + i).toString(16)}/0xf000fff table ${20200 + i} protocol 176`);
  }
  return lines;
}

async function target(name) {
  await must(["ip", "netns", "add", name]);
  // A connected next hop: a veth pair inside the namespace, both ends up.
  await must(["ip", "-n", name, "-batch", "-"], {
    input: "link add rb0 type veth peer name rb1\naddress add 10.255.0.1/24 dev rb0\nlink set rb0 up\nlink set rb1 up\nlink set lo up\n",
  });
}

async function once(o, probeMs, dir) {
  const res = {};
  await settle(probeMs);
  const t1 = `${BENCH_PREFIX}rt-bolt`;
  await target(t1);
  const argv = (cmd, ...x) => ["node", BOLT, cmd, "-f", join(dir, "routes.toml"), "--netns", t1, "--state-dir", join(dir, "state"), ...x];
  try {
    res.boltApply = (await must(argv("apply"))).ms;
    const plans = [];
    for (let i = 0; i < 3; i++) plans.push((await must(argv("plan", "--detailed-exitcode"))).ms);
    res.boltPlan = median(plans);
    const nft = (await must(["ip", "netns", "exec", t1, "nft", "list", "table", "inet", "bolt"])).stdout;
    writeFileSync(join(dir, "bolt.nft"), nft);
  } finally {
    await deleteBenchNetns({ only: (n) => n === t1 });
    rmSync(join(dir, "state"), { recursive: true, force: true });
  }
  await settle(probeMs);
  const t2 = `${BENCH_PREFIX}rt-floor`;
  await target(t2);
  try {
    const lines = floorLines(o).join("\n") + "\n";
    const t0 = performance.now();
    await must(["ip", "-n", t2, "-batch", "-"], { input: lines });
    await must(["ip", "netns", "exec", t2, "nft", "-f", join(dir, "bolt.nft")]);
    res.floor = performance.now() - t0;
  } finally {
    await deleteBenchNetns({ only: (n) => n === t2 });
  }
  return res;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  process.on("SIGINT", () => {
    deleteAllBenchNetnsSync();
    process.exit(130);
  });
  const dir = mkdtempSync(join(tmpdir(), "bolt-bench-routes-"));
  writeFileSync(join(dir, "routes.toml"), boltfile(o));
  const probeMs = await createProbe();
  const rows = [];
  try {
    for (let r = 0; r < o.runs; r++) {
      log(`run ${r + 1}/${o.runs}: ${o.routes} routes, ${o.policies} policies`);
      rows.push(await once(o, probeMs, dir));
    }
  } finally {
    await deleteBenchNetns({ keepProbe: false });
    rmSync(dir, { recursive: true, force: true });
  }
  const m = (k) => median(rows.map((x) => x[k]));
  const md = [
    `# bolt static routes and routing policies (${new Date().toISOString()}, ${cpus().length} CPUs, kernel ${release()}, load ${loadavg()[0].toFixed(2)})`,
    "",
    `${o.routes} static routes + ${o.policies} policies (each: an nft mark rule, an ip rule, a table route), median of ${rows.length} runs:`,
    "",
    "| what | ms | ratio to floor |",
    "|---|---|---|",
    `| floor: one \`ip -batch\` + \`nft -f\` of bolt's table | ${m("floor").toFixed(0)} | 1.00 |`,
    `| bolt apply (CLI, fresh process) | ${m("boltApply").toFixed(0)} | ${(m("boltApply") / m("floor")).toFixed(2)} |`,
    `| bolt no-op plan | ${m("boltPlan").toFixed(0)} | ${(m("boltPlan") / m("floor")).toFixed(2)} |`,
    "",
  ].join("\n");
  process.stdout.write(md);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, "routes-latest.md"), md);
}

main().catch((e) => {
  log(String(e?.stack ?? e));
  deleteAllBenchNetnsSync();
  process.exit(1);
});
