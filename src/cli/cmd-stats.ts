import { EXIT } from "../core/diagnostics.js";
import { emptyIntent } from "../core/intent.js";
import { readLive } from "../core/plan.js";
import type { LiveSnapshot } from "../core/plan.js";
import { ProcessRunner } from "../exec/process-runner.js";
import { inNetns } from "../exec/runner.js";
import type { CommandRunner, Ns } from "../exec/runner.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import { wgDump } from "../../reconcilers/wireguard/index.js";
import type { WgDump } from "../../reconcilers/wireguard/dump.js";
import { checkTarget, readState, target } from "./commands.js";
import type { GlobalOpts } from "./commands.js";
import { buildStats, renderStats, withRates } from "../core/stats.js";
import type { LinkStats, Stats } from "../core/stats.js";

export interface StatsOpts extends GlobalOpts {
  /** seconds between samples; undefined: one sample */
  watch?: number;
  /** ping each WireGuard peer's first allowed address through the tunnel */
  rtt?: boolean;
  /** samples to take with --watch before stopping (tests); default: until interrupted */
  count?: number;
}

/**
 * One sample: what bolt owns (a shallow read, as `bolt show`, or the caller's own `snap` of it),
 * link counters, WireGuard dumps, conntrack.
 */
export async function sampleStats(runner: CommandRunner, t: Ns, originals: Map<string, string>, rtt: boolean, snap?: LiveSnapshot): Promise<Stats> {
  snap ??= await readLive(runner, t, REGISTRY, { deep: false, intent: emptyIntent(), originals, leftovers: false });
  const owned = [...snap.live.values()].filter((r) => r.owned);
  const io = snap.reader;
  const wgIfs = owned.filter((r) => r.kind === "wireguard").map((r) => r.name);
  const [links, dumps, ct] = await Promise.all([
    io.ipJson<LinkStats[]>(["-s", "link", "show"]),
    Promise.all(wgIfs.map(async (ifname) => [ifname, await wgDump(io, ifname)] as const)),
    // Per namespace: the target's own table (the file is the reading namespace's).
    runner.run(inNetns(t, ["cat", "/proc/net/nf_conntrack"])),
  ]);
  const dumpMap = new Map(dumps.filter((d): d is readonly [string, WgDump] => !!d[1]));
  const ruleCounters = Object.assign({}, ...owned.filter((r) => r.kind === "nft").map((r) => r.counters ?? {})) as Record<string, string>;
  const rttMap = rtt ? await peerRtts(runner, t, dumpMap) : undefined;
  return buildStats({
    target: t,
    timeMs: Date.now(),
    owned,
    links,
    dumps: dumpMap,
    ruleCounters,
    conntrack: ct.code === 0 ? ct.stdout : undefined,
    rtt: rttMap,
  });
}

/** One echo to each peer's first allowed address (routed into its tunnel), in parallel; 1 s wait. */
async function peerRtts(runner: CommandRunner, t: Ns, dumps: Map<string, WgDump>): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>();
  const peers = [...dumps.values()].flatMap((d) => d.peers);
  await Promise.all(
    peers.map(async (p) => {
      const addr = p.allowedIps.map((a) => a.split("/")[0]!).find((a) => a !== "0.0.0.0" && a !== "::");
      if (!addr) return out.set(p.publicKey, null);
      const r = await runner.run(inNetns(t, ["ping", "-n", "-c", "1", "-W", "1", addr]));
      const m = /time=([\d.]+) ms/.exec(r.stdout);
      out.set(p.publicKey, r.code === 0 && m ? Number(m[1]) : null);
    }),
  );
  return out;
}

/** `bolt stats [--json] [--watch S] [--rtt]`: one sample, or one every S seconds with per-second rates. */
export async function cmdStats(o: StatsOpts): Promise<number> {
  const runner = o.runner ?? new ProcessRunner();
  const t = target(o);
  await checkTarget(runner, t);
  const { originals } = readState(o);
  let prev: Stats | undefined;
  let stop = false;
  const onInt = () => {
    stop = true;
  };
  process.once("SIGINT", onInt);
  try {
    for (let n = 0; ; n++) {
      const cur = await sampleStats(runner, t, originals, !!o.rtt);
      const shown = prev ? withRates(prev, cur) : cur;
      if (o.json) o.out(`${JSON.stringify(shown, null, o.watch === undefined ? 2 : undefined)}\n`);
      else o.out(`${o.watch !== undefined ? `${new Date(cur.time_ms).toISOString()}\n` : ""}${renderStats(shown)}${o.watch !== undefined ? "\n" : ""}`);
      prev = cur;
      if (o.watch === undefined || stop || (o.count !== undefined && n + 1 >= o.count)) break;
      await new Promise((r) => setTimeout(r, o.watch! * 1000));
      if (stop) break;
    }
  } finally {
    process.off("SIGINT", onInt);
  }
  return EXIT.OK;
}
