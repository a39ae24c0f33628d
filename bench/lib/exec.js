import { spawn, spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";

/** Children still running: a Ctrl-C handler kills exactly these, by pid. */
export const liveChildren = new Set();

/**
 * Runs argv (no shell) and resolves with its exit code, output and wall time. The clock
 * starts before spawn: process creation is part of what every method pays.
 */
export function run(argv, { input, env } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(argv[0], argv.slice(1), {
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { ...process.env, LC_ALL: "C", ...env },
    });
    liveChildren.add(p);
    const out = [];
    const err = [];
    p.stdout.on("data", (d) => out.push(d));
    p.stderr.on("data", (d) => err.push(d));
    p.on("error", (e) => {
      liveChildren.delete(p);
      reject(e);
    });
    p.on("close", (code, signal) => {
      liveChildren.delete(p);
      resolve({ code: code ?? 128, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: performance.now() - t0 });
    });
    if (input !== undefined) {
      // A child that exits before reading all of stdin (ip -batch stops at the first error) is reported by its exit code, not by EPIPE.
      p.stdin.on("error", () => {});
      p.stdin.end(input);
    }
  });
}

/** run() that throws with the command and its stderr unless the exit code is one of `ok`. */
export async function must(argv, opts = {}, ok = [0]) {
  const r = await run(argv, opts);
  if (!ok.includes(r.code)) {
    const e = new Error(`command failed (exit ${r.code}): ${argv.join(" ")}\n${(r.stderr || r.stdout).trim().split("\n").slice(0, 8).join("\n")}`);
    e.result = r;
    throw e;
  }
  return r;
}

/** `ip` argv in a namespace (`ip -n NS …` needs no extra process). */
export function ip(ns, ...args) {
  return ns ? ["ip", "-n", ns, ...args] : ["ip", ...args];
}

/** Run async tasks with at most `limit` in flight (what bolt's apply does for per-namespace batches). */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Synchronous variant for signal handlers, where the event loop is about to stop. */
export function runSync(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  return { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(xs) {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
