#!/usr/bin/env node
// `npm run bench:lb-health`: load-balancer health flip latency (issue 12) — from a backend's
// port closing (its server killed) to bolt's verdict map no longer selecting it, and from the
// port answering again to the map selecting it again, with `bolt watch` running the checks.
// Split into detection (the daemon's runtime file records the new verdict: bounded by
// fall × interval + timeout) and the pass (plan + one nft transaction). The map change is seen
// with `nft monitor rules` in the target, not by polling. Options: --flips 5 --interval 200ms
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { liveChildren, median, must, runSync, sleep } from "./lib/exec.js";
import { BENCH_PREFIX, deleteBenchNetns } from "./lib/netns.js";
import { BOLT } from "./lib/methods.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const log = (s) => process.stderr.write(s + "\n");
const T = `${BENCH_PREFIX}lbh`;
const B = `${BENCH_PREFIX}lbh-be`;
const BACKENDS = ["10.254.0.11", "10.254.0.12", "10.254.0.13"];
const VIP = "10.254.9.10";
const PORT = 8080;

function parseArgs(argv) {
  const o = { flips: 5, interval: "200ms", timeout: "100ms", fall: 1, rise: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (a.includes("=") ? a.split("=")[1] : argv[++i]);
    if (a.startsWith("--flips")) o.flips = Number(val());
    else if (a.startsWith("--interval")) o.interval = val();
    else if (a.startsWith("--timeout")) o.timeout = val();
    else if (a.startsWith("--fall")) o.fall = Number(val());
    else if (a.startsWith("--rise")) o.rise = Number(val());
    else throw new Error(`unknown option ${a} (--flips N --interval 200ms --timeout 100ms --fall 1 --rise 1)`);
  }
  return o;
}

const ms = (d) => (d.endsWith("ms") ? Number(d.slice(0, -2)) : Number(d.replace(/s$/, "")) * 1000);

function boltfile(o) {
  return [
    "[[load_balancers]]",
    'name = "web"',
    `listen = "${VIP}:80"`,
    'algorithm = "round_robin"',
    ...BACKENDS.flatMap((ip) => ["[[load_balancers.backends]]", `ip = "${ip}"`, `port = ${PORT}`]),
    "[load_balancers.health_check]",
    'method = "tcp"',
    `interval = "${o.interval}"`,
    `timeout = "${o.timeout}"`,
    `fall = ${o.fall}`,
    `rise = ${o.rise}`,
    "",
  ].join("\n");
}

async function topology() {
  await must(["ip", "netns", "add", T]);
  await must(["ip", "netns", "add", B]);
  await must(["ip", "-n", T, "-batch", "-"], {
    input: `link add tb0 type veth peer name tb1 netns ${B}\naddress add 10.254.0.1/24 dev tb0\nlink set tb0 up\nlink set lo up\n`,
  });
  await must(["ip", "-n", B, "-batch", "-"], {
    input: [...BACKENDS.map((a) => `address add ${a}/24 dev tb1`), "link set tb1 up", "link set lo up", ""].join("\n"),
  });
}

/** A TCP server on ADDR:8080 in the backend namespace; resolves with its process once it listens. */
function serve(addr) {
  const script = `require("net").createServer((s)=>{s.on("error",()=>{});s.end("${addr}\\n")}).listen(${PORT},"${addr}",()=>process.stdout.write("up\\n"))`;
  // `ip netns exec` execs node in place: the child's pid is the server's.
  const p = spawn("ip", ["netns", "exec", B, process.execPath, "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  liveChildren.add(p);
  p.on("close", () => liveChildren.delete(p));
  return new Promise((resolve, reject) => {
    p.stdout.once("data", () => resolve(p));
    p.once("error", reject);
    p.once("close", (c) => reject(new Error(`server ${addr} exited (${c})`)));
  });
}

function kill(p) {
  return new Promise((resolve) => {
    p.once("close", resolve);
    p.kill("SIGKILL");
  });
}

/** `nft monitor rules` in the target: resolves `next(pred)` with the time of the first event line matching pred. */
function monitor() {
  const p = spawn("ip", ["netns", "exec", T, "nft", "monitor", "rules"], { stdio: ["ignore", "pipe", "inherit"] });
  liveChildren.add(p);
  let waiter;
  let buf = "";
  p.stdout.on("data", (d) => {
    const now = performance.now();
    buf += d.toString();
    const lines = buf.split("\n");
    buf = lines.pop();
    for (const l of lines) if (waiter?.pred(l)) waiter.resolve(now);
  });
  return {
    next: (pred, timeoutMs) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no nft event within ${timeoutMs} ms`)), timeoutMs);
        waiter = {
          pred,
          resolve: (at) => {
            clearTimeout(t);
            waiter = undefined;
            resolve(at);
          },
        };
      }),
    stop: () => kill(p),
  };
}

/** The backend addresses the verdict map selects now (the dnat targets of the chains it jumps to). */
async function selected() {
  const table = (await must(["ip", "netns", "exec", T, "nft", "list", "table", "inet", "bolt"])).stdout;
  const lb = /chain lb0 \{([^}]*\{[^}]*\}[^}]*)\}/.exec(table)?.[1] ?? "";
  const chains = new Set([...lb.matchAll(/goto (lb0_\d+)/g)].map((m) => m[1]));
  const out = [];
  for (const c of chains) {
    const m = new RegExp(`chain ${c} \\{[^}]*dnat ip to ([0-9.]+):${PORT}`).exec(table);
    if (m) out.push(m[1]);
  }
  return out.sort();
}

/** When the daemon's runtime file last recorded a verdict (its `updated`, ms since the epoch). */
function recordedAt(runDir) {
  return Date.parse(JSON.parse(readFileSync(join(runDir, "lb-health", `${T}.json`), "utf8")).updated);
}

async function waitUntil(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  process.on("SIGINT", () => {
    abandon();
    process.exit(130);
  });
  const dir = mkdtempSync(join(tmpdir(), "bolt-bench-lbh-"));
  const runDir = join(dir, "run");
  const file = join(dir, "lb.toml");
  writeFileSync(file, boltfile(o));
  const common = ["-f", file, "--netns", T, "--state-dir", join(dir, "state")];
  const env = { ...process.env, BOLT_RUN_DIR: runDir };
  const rows = [];
  let daemon;
  let mon;
  const servers = new Map();
  try {
    await topology();
    for (const a of BACKENDS) servers.set(a, await serve(a));
    await must(["node", BOLT, "apply", ...common], { env });
    daemon = spawn("node", [BOLT, "watch", ...common, "--json"], { stdio: ["ignore", "ignore", "inherit"], env });
    liveChildren.add(daemon);
    // The checker has probed every backend once: its file lists all three, none down.
    await waitUntil(
      "the daemon's first verdicts",
      async () => {
        const f = JSON.parse(readFileSync(join(runDir, "lb-health", `${T}.json`), "utf8"));
        return Object.keys(f.backends ?? {}).length === 3 && !f.down.length;
      },
      20_000,
    );
    mon = monitor();
    const victim = BACKENDS[1];
    const mapEvent = (l) => l.startsWith("add rule inet bolt lb0 ") && l.includes("numgen");
    for (let i = 0; i < o.flips; i++) {
      await sleep(ms(o.interval) * 2 + Math.random() * ms(o.interval));
      // Down: from the port closing to the map without the backend.
      let event = mon.next(mapEvent, 20_000);
      const t0 = performance.now();
      const w0 = Date.now();
      await kill(servers.get(victim));
      const down = (await event) - t0;
      const downDetect = recordedAt(runDir) - w0;
      const after = await selected();
      if (after.includes(victim) || after.length !== 2) throw new Error(`after the down flip the map selects ${after.join(", ")}`);
      await sleep(ms(o.interval) * 2 + Math.random() * ms(o.interval));
      // Up: from the port answering again to the map selecting it.
      event = mon.next(mapEvent, 20_000);
      servers.set(victim, await serve(victim));
      // The clock starts when the port listens (node's start-up is not the checker's latency).
      const t1 = performance.now();
      const w1 = Date.now();
      const up = (await event) - t1;
      const upDetect = recordedAt(runDir) - w1;
      const back = await selected();
      if (!back.includes(victim)) throw new Error(`after the up flip the map selects ${back.join(", ")}`);
      rows.push({ down, downDetect, up, upDetect });
      log(`flip ${i + 1}/${o.flips}: down ${down.toFixed(0)} ms (verdict after ${downDetect} ms), up ${up.toFixed(0)} ms (verdict after ${upDetect} ms)`);
    }
  } finally {
    if (mon) await mon.stop();
    if (daemon) await kill(daemon);
    for (const p of servers.values()) if (p.exitCode === null && p.signalCode === null) await kill(p);
    await must(["node", BOLT, "destroy", "--netns", T, "--state-dir", join(dir, "state")], { env }).catch((e) => log(String(e.message)));
    await deleteBenchNetns({ only: (n) => n === T || n === B });
    rmSync(dir, { recursive: true, force: true });
  }
  const m = (k) => median(rows.map((x) => x[k]));
  const mx = (k) => Math.max(...rows.map((x) => x[k]));
  const bound = (n) => n * ms(o.interval) + ms(o.timeout);
  const md = [
    `# bolt load-balancer health flip latency (${new Date().toISOString()}, ${cpus().length} CPUs, kernel ${release()}, load ${loadavg()[0].toFixed(2)})`,
    "",
    `3 backends, tcp check every ${o.interval} (timeout ${o.timeout}, fall ${o.fall}, rise ${o.rise}), \`bolt watch\` in the target; ${rows.length} flips each way, median (max):`,
    "",
    "| flip | verdict recorded (detection) | map updated (total) | nominal detection (n × interval + timeout) |",
    "|---|---|---|---|",
    `| port closed → out of the map | ${m("downDetect").toFixed(0)} ms (${mx("downDetect").toFixed(0)}) | ${m("down").toFixed(0)} ms (${mx("down").toFixed(0)}) | ${bound(o.fall)} ms |`,
    `| port open → back in the map | ${m("upDetect").toFixed(0)} ms (${mx("upDetect").toFixed(0)}) | ${m("up").toFixed(0)} ms (${mx("up").toFixed(0)}) | ${bound(o.rise)} ms |`,
    "",
    "Detection also pays each probe round's process start-up (`ip netns exec` + node in the target); the rest of the total is the daemon's pass: plan against the kernel and one `nft -f` transaction.",
    "",
  ].join("\n");
  process.stdout.write(md);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, "lb-health-latest.md"), md);
}

/** On a signal or a crash: the processes this benchmark started (by pid) and its two namespaces, no others'. */
function abandon() {
  for (const c of liveChildren) c.kill("SIGKILL");
  for (const n of [T, B]) runSync(["ip", "netns", "del", n]);
}

const crash = (e) => {
  log(String(e?.stack ?? e));
  abandon();
  process.exit(1);
};
process.on("unhandledRejection", crash);
main().catch(crash);
