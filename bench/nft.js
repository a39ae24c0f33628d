#!/usr/bin/env node
// nftables benchmark (issue 3): N firewall rules and a 100k-element blocklist applied by bolt vs
// a hand-written `nft -f` file with the same rules, in fresh throwaway namespaces, same run.
// Options: --rules 100,1000,10000  --blocklist 100000  --runs K
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RESULTS = join(ROOT, "bench", "results");
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const RULES = opt("rules", "100,1000,10000").split(",").map(Number);
const BLOCKLIST = Number(opt("blocklist", "100000"));
const RUNS = Number(opt("runs", "3"));
const log = (s) => process.stderr.write(s + "\n");

function sh(argv, input) {
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: "utf8", maxBuffer: 1 << 30 });
  const ms = performance.now() - t0;
  if (r.status !== 0 && r.status !== 2) throw new Error(`${argv.join(" ")} exited ${r.status}: ${(r.stderr || "").slice(0, 400)}`);
  return { ms, code: r.status, stdout: r.stdout };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function withNetns(name, fn) {
  spawnSync("ip", ["netns", "del", name]);
  execFileSync("ip", ["netns", "add", name]);
  try {
    return fn(name);
  } finally {
    spawnSync("ip", ["netns", "del", name]);
  }
}

/** The same N rules bolt compiles for the config below, written by hand. */
function rulesConfig(n) {
  const rules = [];
  for (let i = 0; i < n; i++)
    rules.push(
      `[[firewall.rules]]\nname = "r${i}"\naction = "allow"\nprotocol = "tcp"\ndest_ports = ${1024 + (i % 60000)}\nsource = "10.${(i >> 8) & 255}.${i & 255}.0/24"\n`,
    );
  return `[networks.bench]\nsubnet = "172.31.0.0/24"\ninternet = false\nisolated = false\n\n${rules.join("\n")}`;
}
function rulesScript(n) {
  const lines = [
    "table inet floor {",
    "\tchain input {",
    "\t\ttype filter hook input priority 0; policy accept;",
    "\t\tjump firewall",
    "\t}",
    "\tchain forward {",
    "\t\ttype filter hook forward priority 0; policy accept;",
    "\t\tct state established,related accept",
    "\t\tjump firewall",
    '\t\tiifname "bolt-bench" oifname != "bolt-bench" counter drop',
    "\t}",
    "\tchain firewall {",
  ];
  for (let i = 0; i < n; i++) lines.push(`\t\ttcp dport ${1024 + (i % 60000)} ip saddr 10.${(i >> 8) & 255}.${i & 255}.0/24 counter accept`);
  lines.push("\t}", "}");
  return lines.join("\n") + "\n";
}
function blocklistFile(n) {
  const out = [];
  // distinct, non-adjacent /32s so neither side merges intervals
  for (let i = 0; i < n; i++) {
    const v = 0x64400000 + i * 2;
    out.push(`${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`);
  }
  return out;
}

function boltRun(dir, ns, config) {
  const file = join(dir, "bolt-network.toml");
  writeFileSync(file, config);
  const state = join(dir, "state");
  const bolt = (...a) => ["node", join(ROOT, "bin", "bolt.js"), ...a, "-f", file, "--netns", ns, "--state-dir", state, "--log-level", "error"];
  const apply = sh(bolt("apply"));
  const plans = [];
  for (let i = 0; i < RUNS; i++) {
    const p = sh(bolt("plan", "--detailed-exitcode"));
    if (p.code !== 0) throw new Error(`no-op plan after apply was not empty (exit ${p.code})`);
    plans.push(p.ms);
  }
  return { apply: apply.ms, plan: median(plans) };
}

const rows = [];
const tmp = mkdtempSync(join(tmpdir(), "bolt-bench-nft-"));
try {
  for (const n of RULES) {
    const boltTimes = [];
    const floorTimes = [];
    let plan = 0;
    for (let r = 0; r < RUNS; r++) {
      const dir = mkdtempSync(join(tmp, `r${n}-`));
      const b = withNetns(`bolt-t-nftb-b${n}`, (ns) => boltRun(dir, ns, rulesConfig(n)));
      boltTimes.push(b.apply);
      plan = b.plan;
      const script = rulesScript(n);
      floorTimes.push(withNetns(`bolt-t-nftb-f${n}`, (ns) => sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], script).ms));
    }
    rows.push({ case: `${n} rules`, bolt: median(boltTimes), floor: median(floorTimes), plan });
    log(`${n} rules: bolt ${median(boltTimes).toFixed(0)} ms, nft -f ${median(floorTimes).toFixed(0)} ms, no-op plan ${plan.toFixed(0)} ms`);
  }
  if (BLOCKLIST > 0) {
    const ips = blocklistFile(BLOCKLIST);
    const boltTimes = [];
    const floorTimes = [];
    let plan = 0;
    for (let r = 0; r < RUNS; r++) {
      const dir = mkdtempSync(join(tmp, "bl-"));
      writeFileSync(join(dir, "blocked.txt"), ips.join("\n") + "\n");
      const config = `[networks.bench]\nsubnet = "172.31.0.0/24"\ninternet = false\nisolated = false\n\n[firewall.ddos]\nblocklists = ["blocked.txt"]\n`;
      const b = withNetns("bolt-t-nftb-bl", (ns) => boltRun(dir, ns, config));
      boltTimes.push(b.apply);
      plan = b.plan;
      const script = `table inet floor {\n\tset bl { type ipv4_addr; flags interval; elements = { ${ips.join(", ")} } }\n\tchain pre { type filter hook prerouting priority -300; policy accept; ip saddr @bl counter drop; }\n}\n`;
      floorTimes.push(withNetns("bolt-t-nftb-blf", (ns) => sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], script).ms));
    }
    rows.push({ case: `${BLOCKLIST} blocklist elements`, bolt: median(boltTimes), floor: median(floorTimes), plan });
    log(`blocklist ${BLOCKLIST}: bolt ${median(boltTimes).toFixed(0)} ms, nft -f ${median(floorTimes).toFixed(0)} ms, no-op plan ${plan.toFixed(0)} ms`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const md = [
  `# bolt nftables benchmark — ${new Date().toISOString()}`,
  "",
  `load average at end: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}; medians of ${RUNS} run(s); wall clock of whole processes.`,
  "",
  "| case | bolt apply ms | hand-written nft -f ms | bolt ÷ nft | bolt no-op plan ms |",
  "|---|---:|---:|---:|---:|",
  ...rows.map((r) => `| ${r.case} | ${r.bolt.toFixed(0)} | ${r.floor.toFixed(0)} | ${(r.bolt / r.floor).toFixed(2)} | ${r.plan.toFixed(0)} |`),
  "",
  "bolt apply = the whole CLI: start, load + validate config, read kernel state, `nft -c` check, one `nft -f` transaction, verify by `nft -j list table`, commit. The hand-written file has the same rules without bolt's comments, loaded by one `nft -f`.",
].join("\n");
mkdirSync(RESULTS, { recursive: true });
writeFileSync(join(RESULTS, "nft-latest.md"), md + "\n");
writeFileSync(join(RESULTS, "nft-latest.json"), JSON.stringify(rows, null, 2) + "\n");
process.stdout.write(md + "\n");
