import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { ip, must, run } from "./exec.js";
import { floorLines, floorTeardownLines } from "./topology.js";

export const BOLT = fileURLToPath(new URL("../../bin/bolt.js", import.meta.url));
/** bolt's apply runs per-namespace batches with this many in flight (applyPlan's default). */
export const CONCURRENCY = 8;

/** The CLI exactly as a user runs it: a fresh node process every time. */
export function boltArgv(ctx, command, ...extra) {
  return ["node", BOLT, command, "-f", ctx.boltfile, "--netns", ctx.target, "--netns-prefix", ctx.prefix, "--state-dir", ctx.stateDir, ...extra];
}

/** `bolt plan --detailed-exitcode`: exit 0 is "no changes"; 2 (changes) is a failure here. */
export async function boltNoopPlan(ctx, stateDir = ctx.stateDir) {
  const r = await must(boltArgv({ ...ctx, stateDir }, "plan", "--detailed-exitcode"), {}, [0, 2]);
  if (r.code === 2) throw new Error(`no-op plan in ${ctx.target} reported changes:\n${r.stdout.split("\n").slice(0, 30).join("\n")}`);
  return r.ms;
}

/**
 * The floors' check that they made bolt's objects: `bolt plan --json` with an empty state
 * dir must find nothing to change. The one exception is bookkeeping, not kernel state: a
 * sysctl already at bolt's value is still "created" until bolt's store records its original.
 */
export async function boltSeesNoChanges(ctx, stateDir) {
  const r = await must(boltArgv({ ...ctx, stateDir }, "plan", "--json"));
  const plan = JSON.parse(r.stdout);
  const live = async (key) => (await must(["ip", "netns", "exec", ctx.target, "sysctl", "-n", key])).stdout.trim();
  const real = [];
  for (const c of plan.changes) if (!(c.kind === "sysctl" && c.action === "create" && c.after?.value === (await live(c.name)))) real.push(c);
  if (real.length)
    throw new Error(
      `bolt sees changes in ${ctx.target} (${ctx.method} did not make bolt's objects): ${real
        .slice(0, 5)
        .map((c) => `${c.action} ${c.address} [${c.changed.join(", ")}]`)
        .join("; ")}`,
    );
  return r.ms;
}

async function timed(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * What bolt writes besides links and namespaces, read back from a namespace bolt applied to:
 * its nft table (listed with counters and comments, so `nft -f` of the listing recreates it
 * rule for rule — bolt recognises its rules by the comments) and ip_forward when bolt set it.
 * The floor replays these; writing the nft ruleset by hand would only copy bolt's compiler.
 */
export async function captureReference(target) {
  const nft = await run(["ip", "netns", "exec", target, "nft", "list", "table", "inet", "bolt"]);
  const fwd = await run(["ip", "netns", "exec", target, "sysctl", "-n", "net.ipv4.ip_forward"]);
  return { nft: nft.code === 0 ? nft.stdout : null, ipForward: fwd.stdout.trim() === "1" };
}

/** Writes the floor's batch files before the clock starts: they are "hand-written". */
export function writeFloorFiles(ctx) {
  const f = floorLines(ctx.items);
  const td = floorTeardownLines(ctx.items);
  const dir = join(ctx.dir, "floor");
  mkdirSync(join(dir, "inside"), { recursive: true });
  const write = (name, lines) => {
    const p = join(dir, name);
    writeFileSync(p, lines.join("\n") + "\n");
    return p;
  };
  const inside = f.inside.map((x, i) => ({ ns: x.ns, file: write(join("inside", `${i}.batch`), x.lines) }));
  return {
    netnsAdd: write("netns-add.batch", f.netnsAdd),
    target: write("target.batch", f.target),
    nft: ctx.reference.nft === null ? null : write("bolt.nft", [ctx.reference.nft]),
    // xargs argument lists, one namespace per line: `ip ARGS` / `nsenter ARGS`
    insideIpn: write(
      "inside-ipn.list",
      inside.map((x) => `-n ${x.ns} -batch ${x.file}`),
    ),
    insideNsenter: write(
      "inside-nsenter.list",
      inside.map((x) => `--net=/run/netns/${x.ns} ip -batch ${x.file}`),
    ),
    teardownTarget: write("teardown-target.batch", td.target),
    netnsDel: write("netns-del.batch", td.netnsDel),
  };
}

/**
 * How a floor runs a tool inside a namespace: `ip -n` / `ip netns exec`, or `nsenter --net`;
 * and how it runs the per-namespace batches: `xargs -P CONCURRENCY -L 1` over a list file, as
 * a shell script would — no node process forks them (node's spawn() blocks its event loop until
 * the child has exec'd, ≈ 4–10 ms each on this VM, which caps a node-driven pool).
 */
const ENTER = {
  ipn: {
    ip: (ns, ...a) => ip(ns, ...a),
    exec: (ns, ...a) => ["ip", "netns", "exec", ns, ...a],
    each: (f) => ["xargs", "-P", String(CONCURRENCY), "-L", "1", "-a", f.insideIpn, "ip"],
  },
  nsenter: {
    ip: (ns, ...a) => ["nsenter", `--net=/run/netns/${ns}`, "ip", ...a],
    exec: (ns, ...a) => ["nsenter", `--net=/run/netns/${ns}`, ...a],
    each: (f) => ["xargs", "-P", String(CONCURRENCY), "-L", "1", "-a", f.insideNsenter, "nsenter"],
  },
};

function floorApply(enter) {
  return (ctx) =>
    timed(async () => {
      const f = ctx.floorFiles;
      await must(["ip", "-batch", f.netnsAdd]);
      await must(enter.ip(ctx.target, "-batch", f.target));
      if (f.nft) await must(enter.exec(ctx.target, "nft", "-f", f.nft));
      if (ctx.reference.ipForward) await must(enter.exec(ctx.target, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"));
      await must(enter.each(f));
    });
}

/** Floor teardown: nft table and ip_forward back, every link into one group, one group delete, then the namespaces. */
function floorTeardown(enter) {
  return (ctx) =>
    timed(async () => {
      const f = ctx.floorFiles;
      if (f.nft) await must(enter.exec(ctx.target, "nft", "delete", "table", "inet", "bolt"));
      if (ctx.reference.ipForward) await must(enter.exec(ctx.target, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0"));
      await must(enter.ip(ctx.target, "-batch", f.teardownTarget));
      await must(["ip", "-batch", f.netnsDel]);
    });
}

/**
 * Each method: apply (timed) creates the N networks + endpoints in ctx.target; teardown
 * (timed where it is reported) removes them again, endpoint namespaces included.
 */
export const METHODS = {
  /** The product: `bolt apply`, then `bolt destroy`, each a fresh CLI process. */
  bolt: {
    apply: async (ctx) => (await must(boltArgv(ctx, "apply"))).ms,
    teardown: async (ctx) => (await must(boltArgv(ctx, "destroy"))).ms,
  },

  /**
   * The floor: one `ip -batch` of `netns add`, one `ip -n TARGET -batch` for bridges,
   * addresses and veths, one `nft -f` and one `sysctl -w` in the target, then one
   * `ip -n NS -batch` per endpoint namespace (an `ip -batch` cannot switch namespaces, and an
   * address or route set before a link moves namespace is dropped by the move), run
   * CONCURRENCY at a time (bolt's pool size) by xargs.
   */
  floor: {
    prepare: (ctx) => (ctx.floorFiles = writeFloorFiles(ctx)),
    apply: floorApply(ENTER.ipn),
    teardown: floorTeardown(ENTER.ipn),
  },

  /**
   * The floor with each namespace entered by `nsenter --net=/run/netns/NS` instead of
   * `ip -n NS` / `ip netns exec NS`: those also unshare a mount namespace and mount sysfs, and
   * copying the mount table (one nsfs bind mount per named namespace) under the kernel's
   * global namespace_sem costs ≈ 5 ms more per process once 1000 namespaces exist —
   * serialised, so concurrency does not hide it. ip, nft and sysctl -w on net.* need no sysfs.
   * The lowest cost known for these objects with stock tools.
   */
  "floor-nsenter": {
    prepare: (ctx) => (ctx.floorFiles = writeFloorFiles(ctx)),
    apply: floorApply(ENTER.nsenter),
    teardown: floorTeardown(ENTER.nsenter),
  },

  /** The slow baseline: the floor's lines, one `ip` process each, one after another (a naive script). */
  perproc: {
    prepare: (ctx) => (ctx.floorFiles = writeFloorFiles(ctx)),
    apply: (ctx) =>
      timed(async () => {
        const f = floorLines(ctx.items);
        for (const l of f.netnsAdd) await must(["ip", ...l.split(" ")]);
        for (const l of f.target) await must(ip(ctx.target, ...l.split(" ")));
        if (ctx.floorFiles.nft) await must(ENTER.ipn.exec(ctx.target, "nft", "-f", ctx.floorFiles.nft));
        if (ctx.reference.ipForward) await must(ENTER.ipn.exec(ctx.target, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"));
        for (const x of f.inside) for (const l of x.lines) await must(ip(x.ns, ...l.split(" ")));
      }),
    // Not reported: the floor's batched teardown removes its objects (same objects).
    teardown: async (ctx) => {
      await floorTeardown(ENTER.ipn)(ctx);
      return undefined;
    },
  },
};
