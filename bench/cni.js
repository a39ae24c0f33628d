#!/usr/bin/env node
// `npm run bench:cni`: CNI ADD latency of bolt-cni against the reference `bridge` plugin with
// `host-local` IPAM (/usr/lib/cni, package containernetworking-plugins), each called as a
// runtime calls it (CNI_* variables, the config on stdin, one process per call), for --n
// containers each (default 20), one at a time: the median and p90 of ADD and of DEL. bolt-cni
// runs both ways: without a daemon (the plugin applies through bolt's engine itself) and through
// a `bolt watch` daemon's API (the fast path); then --n ADDs at once without a daemon (runtimes
// call in parallel; bolt's target lock serialises them). The bridge plugin runs inside its
// target with `ip netns exec` (it makes its bridge where it runs); that wrapper's own cost is
// measured and shown. Every namespace is this benchmark's own (bolt-t-bench-cni*), removed at
// the end. Writes bench/results/cni-latest.md (and .json).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { liveChildren, median, must, run } from "./lib/exec.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const BOLT = join(ROOT, "bin", "bolt.js");
const BOLT_CNI = join(ROOT, "bin", "bolt-cni");
const REF = "/usr/lib/cni";
const PFX = "bolt-t-bench-cni";
const BOLT_T = `${PFX}-bolt`;
const BR_T = `${PFX}-br`;
const log = (s) => process.stderr.write(`${s}\n`);

function parseArgs(argv) {
  const o = { n: 20 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--n") o.n = Number(argv[++i]);
    else if (argv[i] === "-h" || argv[i] === "--help") {
      process.stdout.write("usage: node bench/cni.js [--n N]   (root; N containers per row, default 20)\n");
      process.exit(0);
    } else throw new Error(`unknown option ${argv[i]}`);
  }
  if (!Number.isInteger(o.n) || o.n < 5 || o.n > 200) throw new Error("--n: 5..200");
  return o;
}

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const ms = (x) => `${x.toFixed(1)} ms`;

async function cni(argv, command, env, config) {
  const r = await run(argv, { input: JSON.stringify(config), env: { CNI_COMMAND: command, CNI_IFNAME: "eth0", CNI_PATH: REF, ...env } });
  if (r.code !== 0) throw new Error(`${argv.join(" ")} ${command} failed (${r.code}): ${r.stdout.trim()} ${r.stderr.trim()}`.slice(0, 2000));
  return r;
}

async function namespaces() {
  const r = await run(["ip", "-j", "netns", "list"]);
  return r.stdout.trim() ? JSON.parse(r.stdout).map((n) => n.name) : [];
}

async function cleanup() {
  for (const n of await namespaces()) if (n === PFX || n.startsWith(`${PFX}-`)) await run(["ip", "netns", "del", n]);
}

/** ADD then DEL of each container, one at a time: the latency of each call. */
async function sequential(label, call, containers) {
  const add = [];
  const del = [];
  for (const c of containers) add.push((await call("ADD", c)).ms);
  for (const c of containers) del.push((await call("DEL", c)).ms);
  log(`${label}: ADD median ${ms(median(add))}, DEL median ${ms(median(del))}`);
  return { label, add: { median: median(add), p90: pct(add, 90) }, del: { median: median(del), p90: pct(del, 90) } };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("bench:cni needs root (network namespaces)");
  await cleanup();
  const tmp = mkdtempSync(join(tmpdir(), "bolt-bench-cni-"));
  let daemon;
  try {
    for (const t of [BOLT_T, BR_T]) await must(["ip", "netns", "add", t]);
    const containers = [];
    for (let i = 0; i < o.n; i++) {
      const name = `${PFX}-c${i}`;
      await must(["ip", "netns", "add", name]);
      containers.push({ id: `bench-${i}`, path: `/run/netns/${name}` });
    }
    // bolt: its network in its target, applied once, as a host would have it.
    const file = join(tmp, "bolt-network.toml");
    writeFileSync(file, '[networks.bench]\nsubnet = "10.96.0.0/22"\n');
    const state = join(tmp, "state");
    const boltEnv = { BOLT_NETNS_PREFIX: `${BOLT_T}-`, BOLT_RUN_DIR: join(tmp, "run") };
    await must(["node", BOLT, "apply", "-f", file, "--netns", BOLT_T, "--state-dir", state, "--netns-prefix", `${BOLT_T}-`], { env: boltEnv });
    const boltConf = { cniVersion: "1.0.0", name: "bench", type: "bolt", network: "bench", netns: BOLT_T, stateDir: state };
    const boltCall = (cmd, c) => cni([BOLT_CNI], cmd, { ...boltEnv, CNI_CONTAINERID: c.id, CNI_NETNS: c.path }, boltConf);
    // The reference: bridge + host-local, its leases in a private dir.
    const brConf = {
      cniVersion: "1.0.0",
      name: "bench",
      type: "bridge",
      bridge: "cnibench0",
      isGateway: true,
      ipam: { type: "host-local", ranges: [[{ subnet: "10.97.0.0/22" }]], dataDir: join(tmp, "host-local") },
    };
    const brCall = (cmd, c) => cni(["ip", "netns", "exec", BR_T, join(REF, "bridge")], cmd, { CNI_CONTAINERID: c.id, CNI_NETNS: c.path }, brConf);
    // Warm-up: the first call of each pays for disk caches (node, the bundle, the Go binaries).
    await boltCall("ADD", containers[0]);
    await boltCall("DEL", containers[0]);
    await brCall("ADD", containers[0]);
    await brCall("DEL", containers[0]);

    const wrapper = [];
    for (let i = 0; i < o.n; i++) wrapper.push((await must(["ip", "netns", "exec", BR_T, "true"])).ms);
    const rows = [];
    rows.push(await sequential("bridge + host-local (reference)", brCall, containers));
    rows.push(await sequential("bolt-cni, no daemon", boltCall, containers));

    // Runtimes call ADD in parallel: the wall time of N at once, and each call's own latency.
    const t0 = performance.now();
    const each = await Promise.all(containers.map((c) => boltCall("ADD", c)));
    const parallelWall = performance.now() - t0;
    const parallelEach = each.map((r) => r.ms);
    log(`bolt-cni, ${o.n} ADDs at once: ${ms(parallelWall)} wall`);
    for (const c of containers) await boltCall("DEL", c);

    // The fast path: a daemon serving the target does the attach in its warm process.
    mkdirSync(boltEnv.BOLT_RUN_DIR, { mode: 0o700, recursive: true });
    daemon = runDaemon(
      ["node", BOLT, "watch", "-f", file, "--netns", BOLT_T, "--state-dir", state, "--netns-prefix", `${BOLT_T}-`, "--resync", "60s"],
      boltEnv,
    );
    const socket = join(boltEnv.BOLT_RUN_DIR, `${BOLT_T}.sock`);
    for (let i = 0; ; i++) {
      const h = await run(["curl", "-sf", "--unix-socket", socket, "http://bolt/v1/health"]);
      if (h.code === 0) break;
      if (i > 300) throw new Error("the daemon did not come up");
      await new Promise((r) => setTimeout(r, 100));
    }
    await boltCall("ADD", containers[0]);
    await boltCall("DEL", containers[0]);
    rows.push(await sequential("bolt-cni, through a bolt watch daemon", boltCall, containers));

    const ref = rows[0].add.median;
    const doc = {
      n: o.n,
      machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 100) / 100) },
      ip_netns_exec_ms: median(wrapper),
      rows: rows.map((r) => ({ ...r, add_ratio_to_bridge: r.add.median / ref })),
      parallel: { wall_ms: parallelWall, per_call_median_ms: median(parallelEach), per_call_max_ms: Math.max(...parallelEach) },
    };
    const md = [
      "# bench:cni — CNI ADD latency, bolt-cni vs the reference bridge plugin",
      "",
      `${o.n} containers per row, one call at a time (each call a process, as a runtime runs it); ${doc.machine.cpus} CPUs, load ${doc.machine.loadavg.join(" ")}.`,
      "",
      "| plugin | ADD median | ADD p90 | DEL median | DEL p90 | ADD vs bridge |",
      "|---|---|---|---|---|---|",
      ...doc.rows.map(
        (r) => `| ${r.label} | ${ms(r.add.median)} | ${ms(r.add.p90)} | ${ms(r.del.median)} | ${ms(r.del.p90)} | ${r.add_ratio_to_bridge.toFixed(1)}× |`,
      ),
      "",
      `The bridge plugin's rows include \`ip netns exec\` into its target: ${ms(doc.ip_netns_exec_ms)} median on its own.`,
      `${o.n} bolt-cni ADDs at once (no daemon): ${ms(parallelWall)} wall for all; each call ${ms(doc.parallel.per_call_median_ms)} median, ${ms(doc.parallel.per_call_max_ms)} the slowest (the target lock serialises the applies; whoever holds it creates every attachment recorded by then).`,
      "",
    ].join("\n");
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, "cni-latest.json"), `${JSON.stringify(doc, null, 2)}\n`);
    writeFileSync(join(RESULTS, "cni-latest.md"), md);
    process.stdout.write(md);
  } finally {
    if (daemon) {
      process.kill(daemon.pid, "SIGTERM");
      await daemon.done;
    }
    await cleanup();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `bolt watch` in the background, stopped by its pid at the end. */
function runDaemon(argv, env) {
  const p = run(argv, { env });
  const child = [...liveChildren].pop();
  return { pid: child.pid, done: p };
}

process.on("SIGINT", () => {
  for (const c of liveChildren) c.kill("SIGKILL");
  process.exit(130);
});
main().catch((e) => {
  log(e.stack ?? String(e));
  process.exitCode = 1;
});
