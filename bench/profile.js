#!/usr/bin/env node
// Where does one bolt command spend its time? `node bench/profile.js --n 1000 --command plan`
// runs `bolt plan|apply|destroy` once for N networks + endpoints in bolt-t-bench-profile-N
// (applying first for plan/destroy), under `node --cpu-prof`, with `ip` wrapped on PATH so
// every ip process bolt starts is logged with its start and end time. Prints the CPU profile's
// top entries and the ip timeline (what the kernel work cost vs what node itself cost).
// --unbundled runs tsc's dist/ modules instead of the minified bundle, for readable names.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ip, must, run } from "./lib/exec.js";
import { BENCH_PREFIX, deleteAllBenchNetnsSync, deleteBenchNetns } from "./lib/netns.js";
import { boltfile, floorTeardownLines, topology } from "./lib/topology.js";
import { BOLT, boltArgv } from "./lib/methods.js";
import { summarizeProfile } from "./lib/cpuprofile.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const UNBUNDLED = fileURLToPath(new URL("./lib/unbundled-cli.js", import.meta.url));

function args(argv) {
  const o = { n: 1000, command: "plan", top: 15, unbundled: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--n") o.n = Number(argv[++i]);
    else if (argv[i] === "--command") o.command = argv[++i];
    else if (argv[i] === "--top") o.top = Number(argv[++i]);
    else if (argv[i] === "--unbundled") o.unbundled = true;
    else throw new Error("usage: node bench/profile.js [--n 1000] [--command plan|apply|destroy] [--top 15] [--unbundled]");
  }
  if (!["plan", "apply", "destroy"].includes(o.command)) throw new Error("--command: plan, apply or destroy");
  return o;
}

/** A PATH entry whose `ip` logs "start end exit-code argv" (bash's $EPOCHREALTIME: no extra fork) and runs the real one. */
async function ipWrapper(dir) {
  const real = (await must(["sh", "-c", "command -v ip"])).stdout.trim();
  const logFile = join(dir, "ip.log");
  const bin = join(dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "ip"), `#!/bin/bash\ns=$EPOCHREALTIME\n${real} "$@"\nrc=$?\necho "$s $EPOCHREALTIME $rc $*" >> ${logFile}\nexit $rc\n`);
  chmodSync(join(bin, "ip"), 0o755);
  return { bin, logFile };
}

/** Groups the logged ip processes by what they did; `busy` is the time at least one ip ran. */
function timeline(logFile, target, t0, t1) {
  let lines = [];
  try {
    lines = readFileSync(logFile, "utf8").trim().split("\n").filter(Boolean);
  } catch {
    /* no ip process ran */
  }
  const procs = lines.map((l) => {
    const [s, e, rc, ...a] = l.split(" ");
    const ns = a[0] === "-n" ? a[1] : null;
    const rest = ns ? a.slice(2) : a;
    const batch = rest.some((x) => x === "-batch");
    const read = rest.includes("-j");
    const kind = `${read ? "read" : batch ? "batch" : rest.slice(0, 2).join(" ")}${batch && read ? " (json)" : ""} in ${ns === null ? "host" : ns === target ? "target" : "endpoint ns"}`;
    return { start: Number(s) * 1000, end: Number(e) * 1000, rc: Number(rc), kind, argv: a.join(" ") };
  });
  const groups = new Map();
  for (const p of procs) {
    const g = groups.get(p.kind) ?? { kind: p.kind, count: 0, sumMs: 0, first: Number.POSITIVE_INFINITY, last: 0, maxMs: 0 };
    g.count++;
    g.sumMs += p.end - p.start;
    g.maxMs = Math.max(g.maxMs, p.end - p.start);
    g.first = Math.min(g.first, p.start);
    g.last = Math.max(g.last, p.end);
    groups.set(p.kind, g);
  }
  // union of intervals: wall time during which some ip process was running
  let busy = 0;
  let curS = -1;
  let curE = -1;
  for (const p of [...procs].sort((a, b) => a.start - b.start)) {
    if (p.start > curE) {
      if (curE > curS) busy += curE - curS;
      curS = p.start;
      curE = p.end;
    } else curE = Math.max(curE, p.end);
  }
  if (curE > curS) busy += curE - curS;
  return {
    processes: procs.length,
    ipBusyMs: busy,
    groups: [...groups.values()]
      .sort((a, b) => a.first - b.first)
      .map((g) => ({ ...g, startsAtMs: g.first - t0, endsAtMs: g.last - t0, first: undefined, last: undefined })),
    outsideEndpointNs: procs
      .filter((p) => !p.kind.endsWith("in endpoint ns"))
      .sort((a, b) => a.start - b.start)
      .map((p) => ({ atMs: p.start - t0, ms: p.end - p.start, argv: p.argv.slice(0, 120) })),
    slowest: [...procs]
      .sort((a, b) => b.end - b.start - (a.end - a.start))
      .slice(0, 8)
      .map((p) => ({ ms: p.end - p.start, atMs: p.start - t0, argv: p.argv.slice(0, 120) })),
    firstIpAtMs: procs.length ? Math.min(...procs.map((p) => p.start)) - t0 : undefined,
    afterLastIpMs: procs.length ? t1 - Math.max(...procs.map((p) => p.end)) : undefined,
  };
}

async function main() {
  const o = args(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("run as root (network namespaces)");
  const target = `${BENCH_PREFIX}profile-${o.n}`;
  const prefix = `${target}-`;
  const dir = mkdtempSync(join(tmpdir(), "bolt-bench-profile-"));
  const items = topology(o.n, prefix);
  const ctx = { target, prefix, items, stateDir: join(dir, "state"), boltfile: join(dir, "bolt-network.toml") };
  writeFileSync(ctx.boltfile, boltfile(items));
  // A closed stdout (piped into `head`) must not kill the process before its cleanup ran.
  process.stdout.on("error", () => {});
  let result;
  const cleanup = () => {
    deleteAllBenchNetnsSync();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.on("SIGINT", cleanup);
  process.on("SIGTERM", cleanup);
  try {
    await deleteBenchNetns({ only: (n) => n === target || n.startsWith(prefix) });
    await must(["ip", "netns", "add", target]);
    if (o.command !== "apply") await must(boltArgv(ctx, "apply"));
    const wrap = await ipWrapper(dir);
    const profDir = join(dir, "prof");
    const extra = o.command === "plan" ? ["--detailed-exitcode"] : [];
    const argv = boltArgv(ctx, o.command, ...extra, "--log-level", "info");
    argv.splice(1, 0, "--cpu-prof", "--cpu-prof-dir", profDir);
    if (o.unbundled) argv[argv.indexOf(BOLT)] = UNBUNDLED;
    const t0 = Date.now();
    const r = await run(argv, { env: { PATH: `${wrap.bin}:${process.env.PATH}` } });
    const t1 = Date.now();
    if (r.code !== 0) throw new Error(`bolt ${o.command} exited ${r.code}: ${r.stderr.slice(0, 2000)}`);
    const prof = summarizeProfile(join(profDir, readdirSync(profDir)[0]), o.top);
    const tl = timeline(wrap.logFile, target, t0, t1);
    result = {
      n: o.n,
      command: o.command,
      unbundled: o.unbundled,
      wallMs: r.ms,
      log: r.stderr.trim().split("\n").filter(Boolean),
      ipTimeline: tl,
      cpuProfile: prof,
    };
    mkdirSync(RESULTS, { recursive: true });
    const out = join(RESULTS, `profile-${o.command}-${o.n}.json`);
    writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
    process.stderr.write(`written: ${out}\n`);
  } finally {
    // Fast teardown (grouped link delete) whatever state the command left.
    const td = floorTeardownLines(items);
    await run(ip(target, "-force", "-batch", "-"), { input: td.target.join("\n") + "\n" });
    await deleteBenchNetns({ only: (n) => n === target || n.startsWith(prefix) });
    rmSync(dir, { recursive: true, force: true });
  }
  print(result, o.top);
}

function print(r, top) {
  const f = (x) => (x === undefined ? "–" : x.toFixed(0).padStart(7));
  const L = [
    `bolt ${r.command}${r.unbundled ? " (unbundled)" : ""}, N=${r.n}: ${r.wallMs.toFixed(0)} ms wall (with the ip wrapper: ≈ 3 ms of bash per ip process)`,
    "",
  ];
  const tl = r.ipTimeline;
  L.push(
    `ip processes: ${tl.processes}; some ip running for ${f(tl.ipBusyMs)} ms; first ip at ${f(tl.firstIpAtMs)} ms; after the last ip ${f(tl.afterLastIpMs)} ms`,
  );
  L.push("   count   sum ms   max ms  from ms    to ms  what");
  for (const g of tl.groups) L.push(`${String(g.count).padStart(8)} ${f(g.sumMs)}  ${f(g.maxMs)}  ${f(g.startsAtMs)}  ${f(g.endsAtMs)}  ${g.kind}`);
  L.push("slowest ip processes (ms, started at ms, argv):");
  for (const x of tl.slowest) L.push(`${f(x.ms)}  ${f(x.atMs)}  ip ${x.argv}`);
  const p = r.cpuProfile;
  L.push("", `CPU profile: ${p.sampledMs.toFixed(0)} ms sampled (incl. idle)`, "self time by file/package:");
  for (const x of p.byFile.slice(0, top)) L.push(`${f(x.ms)}  ${x.what}`);
  L.push("inclusive time by function:");
  for (const x of p.inclusive.slice(0, top)) L.push(`${f(x.ms)}  ${x.what}`);
  L.push("self time by function:");
  for (const x of p.selfByFunction.slice(0, top)) L.push(`${f(x.ms)}  ${x.what}`);
  if (r.log.length) L.push("", "bolt log:", ...r.log.slice(-5));
  process.stdout.write(L.join("\n") + "\n");
}

main().catch((e) => {
  process.stderr.write(`profile failed: ${e.stack ?? e}\n`);
  process.exitCode = 1;
});
