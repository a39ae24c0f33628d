#!/usr/bin/env node
// nftables benchmark (issue 3): N firewall rules and a 100k-element blocklist applied by bolt vs
// a hand-written `nft -f` file with the same rules, in fresh throwaway namespaces, same run.
// Issue 14 ("small changes fast"), same run: one rule changed among --delta-rules rules, and one
// blocklist element added among --blocklist, applied by bolt to its existing table (whole CLI,
// and bolt's own nft write step timed inside that apply) vs a hand-written `nft -f` of the delta.
// Options: --rules 100,1000,10000  --blocklist 100000  --delta-rules 10000  --runs K
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { nftWriteTimer } from "./lib/nft-write-timer.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RESULTS = join(ROOT, "bench", "results");
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
// `--rules 0` (or none): skip the whole-table rule cases
const RULES = opt("rules", "100,1000,10000")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const BLOCKLIST = Number(opt("blocklist", "100000"));
const RUNS = Number(opt("runs", "3"));
const DELTA_RULES = Number(opt("delta-rules", "10000"));
const LOAD_START = loadavg();
const log = (s) => process.stderr.write(s + "\n");

function sh(argv, input, env) {
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { input, env, encoding: "utf8", maxBuffer: 1 << 30 });
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

/** Rule i's port; the one rule a delta case changes gets a port no other rule has. */
const port = (i, changed) => (i === changed ? 65500 : 1024 + (i % 60000));
const ruleText = (i, changed) => `tcp dport ${port(i, changed)} ip saddr 10.${(i >> 8) & 255}.${i & 255}.0/24 counter accept`;

/** The same N rules bolt compiles for the config below, written by hand. */
function rulesConfig(n, changed = -1) {
  const rules = [];
  for (let i = 0; i < n; i++)
    rules.push(
      `[[firewall.rules]]\nname = "r${i}"\naction = "allow"\nprotocol = "tcp"\ndest_ports = ${port(i, changed)}\nsource = "10.${(i >> 8) & 255}.${i & 255}.0/24"\n`,
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
  for (let i = 0; i < n; i++) lines.push(`\t\t${ruleText(i)}`);
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
const deltaRows = [];
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
  if (DELTA_RULES > 0) deltaRows.push(...ruleDelta(DELTA_RULES));
  if (BLOCKLIST > 0) deltaRows.push(...blocklistDelta(BLOCKLIST));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

/** A bolt CLI on DIR's config against NS, with the nft write timer on its PATH. */
function boltCli(dir, ns, timer) {
  const file = join(dir, "bolt-network.toml");
  const state = join(dir, "state");
  return (...a) =>
    sh(["node", join(ROOT, "bin", "bolt.js"), ...a, "-f", file, "--netns", ns, "--state-dir", state, "--log-level", "error"], undefined, timer.env);
}

/**
 * bolt's table first applied from `before` (not timed), then the config changed to `after` and
 * applied again: the whole CLI's time, and the one `nft -f` write inside it. The re-plan must be empty.
 */
function boltDelta(dir, ns, before, after) {
  const file = join(dir, "bolt-network.toml");
  const timer = nftWriteTimer(dir);
  const bolt = boltCli(dir, ns, timer);
  before();
  bolt("apply");
  timer.writes();
  after(file);
  const apply = bolt("apply");
  const writes = timer.writes();
  if (writes.length !== 1) throw new Error(`expected one nft write in the delta apply, saw ${writes.length}`);
  const p = bolt("plan", "--detailed-exitcode");
  if (p.code !== 0) throw new Error(`plan after the delta apply was not empty (exit ${p.code})`);
  return { apply: apply.ms, write: writes[0] };
}

function ruleDelta(n) {
  const changed = Math.floor(n / 2);
  const apply = [];
  const write = [];
  const replace = [];
  const refill = [];
  for (let r = 0; r < RUNS; r++) {
    const dir = mkdtempSync(join(tmp, `d${n}-`));
    const file = join(dir, "bolt-network.toml");
    const b = withNetns(`bolt-t-nftb-d${n}`, (ns) =>
      boltDelta(
        dir,
        ns,
        () => writeFileSync(file, rulesConfig(n)),
        () => writeFileSync(file, rulesConfig(n, changed)),
      ),
    );
    apply.push(b.apply);
    write.push(b.write);
    withNetns(`bolt-t-nftb-df${n}`, (ns) => {
      const nft = (script) => sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], script).ms;
      nft(rulesScript(n));
      const listed = JSON.parse(sh(["ip", "netns", "exec", ns, "nft", "-j", "list", "chain", "inet", "floor", "firewall"]).stdout);
      const handle = listed.nftables.filter((i) => i.rule)[changed].rule.handle;
      // bolt's kind of delta, by hand: the one rule replaced by its handle…
      replace.push(nft(`replace rule inet floor firewall handle ${handle} ${ruleText(changed, changed)}\n`));
      // …and the measure of "the delta": the chain flushed and refilled.
      const lines = ["flush chain inet floor firewall"];
      for (let i = 0; i < n; i++) lines.push(`add rule inet floor firewall ${ruleText(i, changed)}`);
      refill.push(nft(lines.join("\n") + "\n"));
    });
  }
  const row = { case: `1 rule changed among ${n} rules`, bolt: median(apply), write: median(write) };
  log(
    `${row.case}: bolt apply ${row.bolt.toFixed(0)} ms (nft write ${row.write.toFixed(0)} ms), replace-rule ${median(replace).toFixed(0)} ms, flush+refill ${median(refill).toFixed(0)} ms`,
  );
  return [
    { ...row, floorName: "`replace rule … handle H` (1 line)", floor: median(replace) },
    { ...row, floorName: `\`flush chain\` + ${n} \`add rule\``, floor: median(refill) },
  ];
}

function blocklistDelta(n) {
  const ips = blocklistFile(n);
  // not adjacent to any listed address: one element more, nothing merges
  const extra = "198.18.7.7";
  const config = `[networks.bench]\nsubnet = "172.31.0.0/24"\ninternet = false\nisolated = false\n\n[firewall.ddos]\nblocklists = ["blocked.txt"]\n`;
  const apply = [];
  const write = [];
  const interval = [];
  const hash = [];
  for (let r = 0; r < RUNS; r++) {
    const dir = mkdtempSync(join(tmp, "dbl-"));
    const b = withNetns("bolt-t-nftb-dbl", (ns) =>
      boltDelta(
        dir,
        ns,
        () => {
          writeFileSync(join(dir, "blocked.txt"), ips.join("\n") + "\n");
          writeFileSync(join(dir, "bolt-network.toml"), config);
        },
        () => writeFileSync(join(dir, "blocked.txt"), [...ips, extra].join("\n") + "\n"),
      ),
    );
    apply.push(b.apply);
    write.push(b.write);
    // The hand-written delta, on the same set as bolt's (type ipv4_addr, flags interval)…
    for (const [flags, out] of [
      ["flags interval; ", interval],
      ["", hash],
    ])
      withNetns("bolt-t-nftb-dblf", (ns) => {
        const nft = (script) => sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], script).ms;
        nft(
          `table inet floor {\n\tset bl { type ipv4_addr; ${flags}elements = { ${ips.join(", ")} } }\n\tchain pre { type filter hook prerouting priority -300; policy accept; ip saddr @bl counter drop; }\n}\n`,
        );
        out.push(nft(`add element inet floor bl { ${extra} }\n`));
      });
  }
  const row = { case: `1 blocklist element added among ${n}`, bolt: median(apply), write: median(write) };
  log(
    `${row.case}: bolt apply ${row.bolt.toFixed(0)} ms (nft write ${row.write.toFixed(0)} ms), add element: interval set ${median(interval).toFixed(0)} ms, plain set ${median(hash).toFixed(0)} ms`,
  );
  return [
    { ...row, floorName: "`add element` (1 element), interval set like bolt's", floor: median(interval) },
    { ...row, floorName: "`add element` (1 element), set without `flags interval`", floor: median(hash) },
  ];
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
  ...(deltaRows.length
    ? [
        "",
        "## Small changes (issue 14): bolt's existing table, one change",
        "",
        "| case | bolt apply ms (whole CLI) | bolt nft write step ms | hand-written `nft -f` of the delta | ms | write ÷ delta | apply ÷ delta |",
        "|---|---:|---:|---|---:|---:|---:|",
        ...deltaRows.map(
          (r) =>
            `| ${r.case} | ${r.bolt.toFixed(0)} | ${r.write.toFixed(1)} | ${r.floorName} | ${r.floor.toFixed(1)} | ${(r.write / r.floor).toFixed(2)} | ${(r.bolt / r.floor).toFixed(2)} |`,
        ),
        "",
        "bolt nft write step = the one `nft -f -` transaction bolt runs in that apply, timed around the real nft by a PATH wrapper (bench/lib/nft-write-timer.js). The hand-written deltas run against a hand-written table of the same size in a fresh namespace. nft 1.0.6 lists every element of an interval set (`flags interval`, as bolt's blocklists are) before adding or deleting one, to check overlaps in userspace: that listing, not the write, is what an element delta on a large interval set costs.",
        "",
        `load average at start: ${LOAD_START.map((x) => x.toFixed(2)).join(" ")}.`,
      ]
    : []),
].join("\n");
mkdirSync(RESULTS, { recursive: true });
writeFileSync(join(RESULTS, "nft-latest.md"), md + "\n");
writeFileSync(join(RESULTS, "nft-latest.json"), JSON.stringify({ rows, deltaRows, loadStart: LOAD_START, loadEnd: loadavg() }, null, 2) + "\n");
process.stdout.write(md + "\n");
