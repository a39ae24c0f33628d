#!/usr/bin/env node
// `npm run bench:watch`: how fast `bolt watch` converges after a save, and what an idle daemon
// costs. In a throwaway namespace `bolt-t-wbench-<id>`:
//   1. latency: 20 saves (MTU of a network toggled 1400/1500, the file replaced by rename like
//      an editor does); for each, the time from the save to the kernel showing the new MTU
//      (polled with `ip -j link show` every 5 ms); p50/p95, once per --debounce value.
//   2. idle CPU: the daemon (and its ip/nft monitor children) left alone for --idle seconds
//      with the default 30 s resync; CPU from /proc/PID/stat (utime+stime, plus cutime+cstime:
//      the short-lived ip/nft/sysctl processes of resync passes, reaped by the daemon).
// Options: --edits N (20)  --debounce 300ms,50ms  --idle S (60)  --resync 30s
// Needs root, a built dist/ (npm run build), ip, nft. Writes bench/results/watch-latest.md.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin", "bolt.js");
const RESULTS = join(ROOT, "bench", "results");
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

function args(argv) {
  const o = { edits: 20, debounce: ["300ms", "50ms"], idle: 60, resync: "30s" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === "--edits") o.edits = Number(v());
    else if (a === "--debounce") o.debounce = v().split(",");
    else if (a === "--idle") o.idle = Number(v());
    else if (a === "--resync") o.resync = v();
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: node bench/watch.js [--edits 20] [--debounce 300ms,50ms] [--idle 60] [--resync 30s]\n");
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ip = (...a) => execFileSync("ip", a, { stdio: ["ignore", "pipe", "pipe"] }).toString();

function config(mtu) {
  return `[networks.front]\nsubnet = "10.201.0.0/24"\nmtu = ${mtu}\n\n[[endpoints]]\nname = "web"\nnetwork = "front"\n\n[networks.back]\nsubnet = "10.202.0.0/24"\n`;
}

function mtuOf(ns, dev) {
  try {
    return JSON.parse(ip("-n", ns, "-j", "link", "show", "dev", dev))[0]?.mtu;
  } catch {
    return undefined;
  }
}

async function until(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/** CPU ticks of a process: [utime+stime, cutime+cstime]. */
function ticks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields after "(comm) ": state is f[0]; utime = field 14 → f[11].
  return [Number(f[11]) + Number(f[12]), Number(f[13]) + Number(f[14])];
}

function childrenOf(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

function startDaemon(ns, file, state, debounce, resync) {
  const child = spawn(
    process.execPath,
    [BIN, "watch", "-f", file, "--netns", ns, "--netns-prefix", `${ns}-`, "--state-dir", state, "--debounce", debounce, "--resync", resync, "--json"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr.on("data", (d) => (log = (log + d.toString()).slice(-200_000)));
  return { child, log: () => log };
}

async function stopDaemon(d) {
  if (d.child.exitCode !== null) return;
  const done = new Promise((r) => d.child.once("exit", r));
  d.child.kill("SIGTERM");
  await done;
}

async function latency(ns, dir, state, debounce, edits, resync) {
  const file = join(dir, "bolt-network.toml");
  writeFileSync(file, config(1500));
  const d = startDaemon(ns, file, state, debounce, resync);
  try {
    await until("the first convergence", () => mtuOf(ns, "bolt-back") === 1500 && mtuOf(ns, "bolt-front") === 1500, 30_000);
    await sleep(1500);
    const samples = [];
    for (let i = 0; i < edits; i++) {
      const mtu = i % 2 === 0 ? 1400 : 1500;
      const tmp = join(dir, ".bolt-network.toml.tmp");
      writeFileSync(tmp, config(mtu));
      const t0 = performance.now();
      renameSync(tmp, file);
      await until(`mtu ${mtu}`, () => mtuOf(ns, "bolt-front") === mtu, 30_000);
      samples.push(performance.now() - t0);
      // Let the follow-up pass (the daemon's own kernel events) finish before the next save.
      await sleep(800);
    }
    return samples;
  } finally {
    await stopDaemon(d);
  }
}

async function idleCpu(ns, dir, state, seconds, resync) {
  const file = join(dir, "bolt-network.toml");
  writeFileSync(file, config(1500));
  const d = startDaemon(ns, file, state, "300ms", resync);
  try {
    await sleep(5000);
    const pids = () => [d.child.pid, ...childrenOf(d.child.pid)];
    const sample = () => {
      let own = 0;
      let reaped = 0;
      for (const p of pids()) {
        try {
          const [o, r] = ticks(p);
          own += o;
          reaped += p === d.child.pid ? r : 0;
        } catch {
          /* a child that just ended */
        }
      }
      return { own, reaped, rss: Number(readFileSync(`/proc/${d.child.pid}/statm`, "utf8").split(" ")[1]) * 4096 };
    };
    const monitorsBefore = childrenOf(d.child.pid).length;
    const passesBefore = d
      .log()
      .split("\n")
      .filter((l) => l.includes('"msg":"pass"')).length;
    const a = sample();
    await sleep(seconds * 1000);
    const b = sample();
    const passes =
      d
        .log()
        .split("\n")
        .filter((l) => l.includes('"msg":"pass"')).length - passesBefore;
    return { cpuOwn: (b.own - a.own) / CLK_TCK, cpuReaped: (b.reaped - a.reaped) / CLK_TCK, seconds, rss: b.rss, monitors: monitorsBefore, passes };
  } finally {
    await stopDaemon(d);
  }
}

async function main() {
  const o = args(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("needs root (network namespaces)");
  const ns = `bolt-t-wbench-${randomBytes(3).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "bolt-wbench-"));
  const cleanup = () => {
    for (const n of [ns, `${ns}-web`]) {
      try {
        ip("netns", "del", n);
      } catch {
        /* not there */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("SIGINT", () => {
    cleanup();
    process.exit(130);
  });
  ip("netns", "add", ns);
  try {
    const series = [];
    for (const deb of o.debounce) {
      const state = mkdtempSync(join(dir, "state-"));
      const s = await latency(ns, dir, state, deb, o.edits, o.resync);
      series.push({ debounce: deb, samples: s, p50: pct(s, 50), p95: pct(s, 95), min: Math.min(...s), max: Math.max(...s) });
      process.stderr.write(`debounce ${deb}: p50 ${pct(s, 50).toFixed(0)} ms, p95 ${pct(s, 95).toFixed(0)} ms\n`);
    }
    const idle = await idleCpu(ns, dir, mkdtempSync(join(dir, "state-")), o.idle, o.resync);
    const perMin = (x) => (x * 60) / idle.seconds;
    const lines = [
      "# bolt watch: save-to-kernel latency and idle cost",
      "",
      `${new Date().toISOString()} · ${cpus().length} × ${cpus()[0]?.model ?? "?"} · Linux ${release()} · load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
      "",
      `Config: 2 networks, 1 veth endpoint; each save toggles one network's MTU (the bridge and the endpoint's veth pair change). Latency = rename of the new file → \`ip -j link show\` (polled every 5 ms) shows the new MTU. ${o.edits} saves per row.`,
      "",
      "| --debounce | p50 | p95 | min | max |",
      "| --- | ---: | ---: | ---: | ---: |",
      ...series.map((s) => `| ${s.debounce} | ${s.p50.toFixed(0)} ms | ${s.p95.toFixed(0)} ms | ${s.min.toFixed(0)} ms | ${s.max.toFixed(0)} ms |`),
      "",
      `Idle daemon, ${idle.seconds} s with --resync ${o.resync} (${idle.passes} resync passes in the window, each a deep read of the target and the endpoint namespace; ${idle.monitors} monitor processes):`,
      "",
      "| what | CPU per minute |",
      "| --- | ---: |",
      `| bolt watch process + ip/nft monitors (utime+stime) | ${(perMin(idle.cpuOwn) * 1000).toFixed(0)} ms |`,
      `| processes run by resync passes (cutime+cstime) | ${(perMin(idle.cpuReaped) * 1000).toFixed(0)} ms |`,
      `| total | ${(perMin(idle.cpuOwn + idle.cpuReaped) * 1000).toFixed(0)} ms (${((perMin(idle.cpuOwn + idle.cpuReaped) / 60) * 100).toFixed(2)} % of one CPU) |`,
      "",
      `Resident memory of the daemon: ${(idle.rss / 1048576).toFixed(0)} MiB.`,
      "",
    ];
    const md = lines.join("\n");
    process.stdout.write(md);
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, "watch-latest.md"), md);
    writeFileSync(join(RESULTS, "watch-latest.json"), JSON.stringify({ series, idle, options: o }, null, 2) + "\n");
  } finally {
    cleanup();
  }
}

main().catch((e) => {
  process.stderr.write(`bench/watch.js: ${e.stack ?? e}\n`);
  process.exit(1);
});
