#!/usr/bin/env node
// The daemon's API at N networks with one endpoint each (bench/lib/topology.js): a no-op plan
// cold (`bolt plan --no-daemon`, a new node process), through the CLI and the daemon's socket,
// and as one request to the warm daemon (the server's own time); and attaching one endpoint
// through POST /v1/endpoints against the hand-written `ip` floor for the same endpoint.
// Usage: node bench/daemon.js [--n 1000] [--runs 7] [--profile DIR]   (root; namespaces bolt-t-bench-daemon-*)
//   --profile DIR: the daemon writes a CPU profile there when it exits
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { ip, median, must, run } from "./lib/exec.js";
import { BENCH_PREFIX, deleteBenchNetns } from "./lib/netns.js";
import { boltfile, topology } from "./lib/topology.js";
import { BOLT } from "./lib/methods.js";

const o = { n: 1000, runs: 7, profile: "" };
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === "--n") o.n = Number(process.argv[++i]);
  else if (process.argv[i] === "--runs") o.runs = Number(process.argv[++i]);
  else if (process.argv[i] === "--profile") o.profile = process.argv[++i];
  else throw new Error("usage: node bench/daemon.js [--n 1000] [--runs 7] [--profile DIR]");
}

const target = `${BENCH_PREFIX}daemon-${o.n}`;
const prefix = `${target}-`;
const dir = mkdtempSync(join(tmpdir(), "bolt-bench-daemon-"));
const runDir = join(dir, "run");
mkdirSync(runDir, { mode: 0o700 });
const stateDir = join(dir, "state");
const file = join(dir, "bolt-network.toml");
const socket = join(runDir, `${target}.sock`);
const env = { BOLT_RUN_DIR: runDir };
const common = ["--netns", target, "--netns-prefix", prefix, "--state-dir", stateDir];
const log = (s) => process.stderr.write(`${s}\n`);

function api(method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const t0 = performance.now();
    const req = request({ socketPath: socket, method, path, headers: payload ? { "content-type": "application/json" } : {} }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode, body: JSON.parse(text), ms: performance.now() - t0 }));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

async function timed(k, fn) {
  const ms = [];
  for (let i = 0; i < k; i++) ms.push(await fn(i));
  return { median: Math.round(median(ms) * 10) / 10, min: Math.round(Math.min(...ms) * 10) / 10, max: Math.round(Math.max(...ms) * 10) / 10 };
}

let daemon;
try {
  const items = topology(o.n, prefix);
  writeFileSync(file, boltfile(items));
  await must(["ip", "netns", "add", target]);
  log(`applying N=${o.n} …`);
  let t0 = performance.now();
  await must(["node", BOLT, "apply", "-f", file, ...common, "--no-daemon"], { env });
  log(`  apply ${Math.round(performance.now() - t0)} ms`);

  const cold = await timed(o.runs, async () => {
    const r = await run(["node", BOLT, "plan", "-f", file, ...common, "--no-daemon", "--detailed-exitcode"], { env });
    if (r.code !== 0) throw new Error(`no-op plan found changes or failed (${r.code}): ${r.stderr}`);
    return r.ms;
  });
  log(`  cold no-op plan (--no-daemon): ${JSON.stringify(cold)}`);

  const prof = o.profile ? ["--cpu-prof", "--cpu-prof-dir", o.profile] : [];
  daemon = spawn("node", [...prof, BOLT, "watch", "-f", file, ...common, "--resync", "1h", "--log-level", "warn"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  t0 = performance.now();
  for (;;) {
    const h = await api("GET", "/v1/health").catch(() => undefined);
    if (h?.status === 200) break;
    if (performance.now() - t0 > 300_000) throw new Error("the daemon did not become healthy");
    await new Promise((r) => setTimeout(r, 200));
  }
  log(`  daemon healthy after ${Math.round(performance.now() - t0)} ms`);
  // Kernel events from the start-up pass settle before the measurement.
  await new Promise((r) => setTimeout(r, 2000));

  const viaCli = await timed(o.runs, async () => {
    const r = await run(["node", BOLT, "plan", "-f", file, ...common, "--detailed-exitcode"], { env });
    if (r.code !== 0) throw new Error(`no-op plan via the daemon failed (${r.code}): ${r.stderr}`);
    return r.ms;
  });
  log(`  no-op plan, CLI through the daemon: ${JSON.stringify(viaCli)}`);
  const warm = await timed(o.runs * 2, async () => {
    const r = await api("POST", "/v1/plan", { detailed_exitcode: true });
    if (r.body.exit_code !== 0) throw new Error(`no-op plan via the API: ${JSON.stringify(r.body)}`);
    return r.ms;
  });
  log(`  no-op plan, one API request (warm daemon): ${JSON.stringify(warm)}`);
  // How many of the daemon's reads its kernel cache answered (src/exec/read-cache-runner.ts).
  const readCache = (await api("GET", "/v1/stats")).body.read_cache;
  log(`  read cache: ${JSON.stringify(readCache)}`);

  // Attach one endpoint to network n0, detach it again; the floor creates the same objects by hand.
  const n0 = items[0];
  // What the attaches add to the state store's revisions: manifests and the runs they name (base/json-chunks.ts).
  const storeBytes = () => {
    const db = new Database(join(stateDir, "bolt.db"), { readonly: true });
    try {
      const blobs = db.prepare("SELECT coalesce(sum(length(desired) + length(intent)), 0) AS n FROM revision_blobs").get().n;
      return blobs + db.prepare("SELECT coalesce(sum(length(body)), 0) AS n FROM revision_chunks").get().n;
    } finally {
      db.close();
    }
  };
  const bytesBefore = storeBytes();
  const attach = [];
  const detach = [];
  for (let i = 0; i < o.runs; i++) {
    const a = await api("POST", "/v1/endpoints", { name: `x${i}`, network: n0.net, ip: `${n0.subnet.split(".").slice(0, 3).join(".")}.${100 + i}` });
    if (a.status !== 201) throw new Error(`attach: ${JSON.stringify(a.body)}`);
    attach.push(a.ms);
    await new Promise((r) => setTimeout(r, 500));
    const d = await api("DELETE", `/v1/endpoints/x${i}`);
    if (d.status !== 200) throw new Error(`detach: ${JSON.stringify(d.body)}`);
    detach.push(d.ms);
    await new Promise((r) => setTimeout(r, 500));
  }
  const stats = (ms) => ({ median: Math.round(median(ms) * 10) / 10, min: Math.round(Math.min(...ms) * 10) / 10, max: Math.round(Math.max(...ms) * 10) / 10 });
  log(`  attach through the API: ${JSON.stringify(stats(attach))}; detach: ${JSON.stringify(stats(detach))}`);
  const storeKbPerAttach = Math.round((storeBytes() - bytesBefore) / 1024 / o.runs);
  log(`  revisions stored per attach+detach: ${storeKbPerAttach} KB`);

  // The floor: what one writes by hand for one endpoint (namespace, veth into it on the bridge,
  // address, routes), three processes, timed from Node like bolt's own.
  const floor = await timed(o.runs, async (i) => {
    const ns = `${prefix}f${i}`;
    const host = `bv-f${i}`;
    const addr = `${n0.subnet.split(".").slice(0, 3).join(".")}.${200 + i}`;
    const t = performance.now();
    await must(["ip", "netns", "add", ns]);
    await must(ip(target, "-batch", "-"), {
      input: `link add name ${host} type veth peer name eth0 netns ${ns}\nlink set dev ${host} addrgenmode none master ${n0.bridge} up\n`,
    });
    await must(["ip", "-n", ns, "-batch", "-"], {
      input: `link set dev lo up\nlink set dev eth0 addrgenmode none\naddress add ${addr}/24 dev eth0\nlink set dev eth0 up\nroute add default via ${n0.gw} dev eth0\n`,
    });
    const ms = performance.now() - t;
    await must(ip(target, "link", "del", host));
    await must(["ip", "netns", "del", ns]);
    return ms;
  });
  log(`  hand-written ip floor for one endpoint: ${JSON.stringify(floor)}`);
  const result = {
    n: o.n,
    runs: o.runs,
    noop_plan_ms: { cold_cli_no_daemon: cold, cli_through_daemon: viaCli, api_request_warm: warm },
    read_cache: readCache,
    attach_ms: { api: stats(attach), floor, ratio: Math.round((median(attach) / floor.median) * 10) / 10 },
    detach_ms: stats(detach),
    revision_kb_per_attach: storeKbPerAttach,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  if (daemon && daemon.exitCode === null) {
    daemon.kill("SIGTERM");
    await new Promise((r) => daemon.once("exit", r));
  }
  await deleteBenchNetns({ only: (n) => n === target || n.startsWith(prefix) });
  rmSync(dir, { recursive: true, force: true });
}
