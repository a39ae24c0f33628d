import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { ip, median, must, run } from "./exec.js";

const PHASES = fileURLToPath(new URL("./plan-phases.js", import.meta.url));
const LIB = fileURLToPath(new URL("./plan-phases-lib.js", import.meta.url));

async function readParsed(argv) {
  const r = await must(argv);
  const t0 = performance.now();
  JSON.parse(r.stdout || "[]");
  return { ms: r.ms, parseMs: performance.now() - t0, bytes: r.stdout.length };
}

/** Every read a no-op plan of this Boltfile makes (see `bench/profile.js` for the live list). */
function planReads(target) {
  const exec = (...a) => ["ip", "netns", "exec", target, ...a];
  return {
    link: ip(target, "-j", "-d", "link", "show"),
    addr: ip(target, "-j", "addr", "show"),
    route: ip(target, "-j", "-4", "route", "show", "table", "all"),
    netns: ["ip", "-j", "netns", "list"],
    nftJson: exec("nft", "-j", "list", "table", "inet", "bolt"),
    nftText: exec("nft", "-s", "list", "table", "inet", "bolt"),
    sysctl: exec("sysctl", "net.ipv4.ip_forward"),
  };
}

/**
 * The read floor of a no-op plan in a namespace holding bolt's N networks: the two dumps
 * bolt needs for links (`ip -j -d link show`, `ip -j addr show`), alone and in parallel, each
 * other read a plan makes alone, and all of them at once. Median of `reps`.
 */
export async function readFloor(target, reps = 5) {
  const reads = planReads(target);
  const s = { pair: [], all: [], node: [] };
  const bytes = {};
  for (let i = 0; i < reps; i++) {
    for (const [k, argv] of Object.entries(reads)) {
      const r = k === "sysctl" || k.startsWith("nft") ? await must(argv) : null;
      const x = r ? { ms: r.ms, parseMs: 0, bytes: r.stdout.length } : await readParsed(argv);
      (s[k] ??= []).push(x.ms);
      (s[`${k}Parse`] ??= []).push(x.parseMs);
      bytes[k] = x.bytes;
    }
    let t0 = performance.now();
    await Promise.all([readParsed(reads.link), readParsed(reads.addr)]);
    s.pair.push(performance.now() - t0);
    t0 = performance.now();
    await Promise.all(Object.values(reads).map((argv) => must(argv)));
    s.all.push(performance.now() - t0);
    s.node.push((await run(["node", "-e", "0"])).ms);
  }
  const m = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)]));
  return {
    reads: Object.fromEntries(Object.keys(reads).map((k) => [k, { argv: reads[k].join(" "), ms: m[k], parseMs: m[`${k}Parse`], bytes: bytes[k] }])),
    linkPlusAddrSequentialMs: m.link + m.addr + m.linkParse + m.addrParse,
    linkPlusAddrParallelMs: m.pair,
    allPlanReadsParallelMs: m.all,
    nodeStartupMs: m.node,
  };
}

/**
 * Bundles plan-phases-lib.js like scripts/bundle.mjs bundles the CLI (when the build bundles
 * it), into bench/results/: two levels below the package root like dist/cli/, so the compiled
 * code's root-relative paths (schema/, dist/validators.cjs) resolve the same.
 */
async function phasesLib() {
  if (!existsSync(fileURLToPath(new URL("../../dist/cli/bolt.cjs", import.meta.url)))) return { path: LIB, bundled: false };
  const { build } = await import("esbuild");
  const outfile = fileURLToPath(new URL("../results/plan-phases.bundle.mjs", import.meta.url));
  mkdirSync(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [LIB],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["better-sqlite3"],
    banner: { js: "import { createRequire as __boltCreateRequire } from 'node:module'; const require = __boltCreateRequire(import.meta.url);" },
    logLevel: "warning",
  });
  return { path: outfile, bundled: true };
}

/** `bolt plan` replayed phase by phase in a fresh node process (see plan-phases.js); median of `reps`. */
export async function planPhases(ctx, reps = 3) {
  const lib = await phasesLib();
  const samples = [];
  for (let i = 0; i < reps; i++) {
    const r = await must(["node", PHASES, lib.path, ctx.boltfile, ctx.target, ctx.prefix, ctx.stateDir]);
    const p = JSON.parse(r.stdout.trim().split("\n").pop());
    if (p.changes !== 0) throw new Error(`plan-phases: expected a no-op plan, got ${p.changes} changes`);
    samples.push({ ...p, wallMs: r.ms });
  }
  const keys = Object.keys(samples[0]).filter((k) => k.endsWith("Ms"));
  return { bundled: lib.bundled, ...Object.fromEntries(keys.map((k) => [k, median(samples.map((x) => x[k]))])) };
}
