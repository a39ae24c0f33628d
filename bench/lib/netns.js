import { rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { ip, median, must, run, runSync, sleep } from "./exec.js";

/** Every namespace the benchmark creates starts with this; nothing else is ever deleted. */
export const BENCH_PREFIX = "bolt-t-bench-";
/** A scratch namespace kept for the whole run, used only to probe how busy the kernel is. */
export const PROBE_NS = `${BENCH_PREFIX}probe`;

export async function listNetns() {
  const r = await run(["ip", "-j", "netns", "list"]);
  return r.code === 0 && r.stdout.trim() ? JSON.parse(r.stdout).map((n) => n.name) : [];
}

function benchNames(names, keepProbe) {
  return names.filter((n) => n.startsWith(BENCH_PREFIX) && !(keepProbe && n === PROBE_NS));
}

/**
 * Deletes bench namespaces, one `ip -batch` of `netns del` lines (-force: one already gone
 * does not stop the rest). `ip netns del` only unmounts the name; the kernel frees the
 * namespace (and every link in it) later in its cleanup work — see settle().
 */
export async function deleteBenchNetns({ keepProbe = true, only } = {}) {
  const names = benchNames(await listNetns(), keepProbe).filter((n) => !only || only(n));
  if (names.length) await run(["ip", "-force", "-batch", "-"], { input: names.map((n) => `netns del ${n}\n`).join("") });
  forgetEtcNetns(names);
  return names.length;
}

/** `ip netns del` leaves /etc/netns/NAME (resolv.conf, hosts bolt wrote there): a bench namespace's goes with it. */
function forgetEtcNetns(names) {
  for (const n of names) rmSync(`/etc/netns/${n}`, { recursive: true, force: true });
}

/** Signal-handler cleanup: synchronous, deletes every bench namespace including the probe. */
export function deleteAllBenchNetnsSync() {
  const r = runSync(["ip", "-j", "netns", "list"]);
  const names =
    r.code === 0 && r.stdout.trim()
      ? benchNames(
          JSON.parse(r.stdout).map((n) => n.name),
          false,
        )
      : [];
  for (const n of names) runSync(["ip", "netns", "del", n]);
  forgetEtcNetns(names);
  return names.length;
}

/** One process that adds and deletes a veth pair in the probe namespace: it needs the RTNL lock. */
async function probeOnce() {
  const r = await run(ip(PROBE_NS, "-batch", "-"), { input: "link add bench-probe type veth peer name bench-probe1\nlink del bench-probe\n" });
  if (r.code !== 0) throw new Error(`probe failed: ${r.stderr.trim()}`);
  return r.ms;
}

export async function createProbe() {
  if (!(await listNetns()).includes(PROBE_NS)) await must(["ip", "netns", "add", PROBE_NS]);
  const samples = [];
  for (let i = 0; i < 7; i++) samples.push(await probeOnce());
  return median(samples);
}

/**
 * Waits until the kernel has finished tearing down what earlier methods deleted. Freeing a
 * namespace with many links runs in the kernel's netns cleanup work and holds the RTNL lock
 * (and RCU grace periods) that every link change needs, so a measurement started too early
 * would be charged for the previous method's teardown. Done when no bench namespace is
 * listed and three probes in a row are as fast as at the start of the run.
 */
export async function settle(baselineMs, { timeoutMs = 300_000 } = {}) {
  const t0 = performance.now();
  const limit = Math.max(baselineMs * 3, baselineMs + 25);
  let good = 0;
  let last = 0;
  while (performance.now() - t0 < timeoutMs) {
    if (benchNames(await listNetns(), true).length) {
      await deleteBenchNetns();
      await sleep(200);
      continue;
    }
    last = await probeOnce();
    good = last <= limit ? good + 1 : 0;
    if (good >= 3) return { ms: performance.now() - t0, settled: true };
    await sleep(good ? 100 : 250);
  }
  return { ms: performance.now() - t0, settled: false, lastProbeMs: last };
}
