import { parseIp4 } from "../../src/core/ipv4.js";
import { parseIp6 } from "../../src/core/ipv6.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import type { Change, OpLine, Reconciler, Resource } from "../../src/core/resource.js";
import { NETWORKS } from "../network/intent.js";
import { WIREGUARD, fullTunnel } from "../wireguard/intent.js";
import { NFT, nftIntentHooks } from "./intent.js";
import { parseToolJson } from "../../src/core/live-reader.js";
import type { LiveReader } from "../../src/core/live-reader.js";
import type { Ns } from "../../src/exec/runner.js";
import { compileTable } from "./compile.js";
import type { NftTable } from "./compile.js";
import { tableDelta } from "./delta.js";
import { parseLive } from "./read.js";
import type { LiveShape } from "./read.js";
import { DELETE_SCRIPT, TABLE, restoreScript, tableScript, tableSpec } from "./script.js";
import { backendHealthText, healthFile, readLbDown, readLbHealth } from "../../src/core/lb-health.js";
import type { HealthFile } from "../../src/core/lb-health.js";

/**
 * bolt's nftables state: ONE table `inet bolt` (NAT, isolation, port forwards, firewall rules,
 * DDoS presets, blocklists, segments), written as one `nft -f -` transaction, checked with
 * `nft -c` at plan time. A new table, or one whose shape changes, is replaced whole; otherwise
 * only the chains, rules and set elements that differ are written (delta.ts). Other tables are
 * never listed, flushed or changed. Undo restores the table text read before the apply, whole,
 * in one transaction.
 */
export const nftReconciler: Reconciler = {
  kind: "nft",
  // The table names bolt's interfaces and addresses; it goes in once they exist.
  phases: { table: { after: ["network.link", "endpoint.inside", "wireguard.conf", "rule.rule"] } },
  // NAT and port forwards need the endpoints' leased addresses; mesh ACLs the node's address.
  uses: ["network", "endpoint", "wireguard", "rule", "tc"],
  intent: nftIntentHooks,
  replaceOn: [],
  readScope: [{ exec: ["nft", "-j", "list", "table", "inet", "bolt"] }],
  offlineReads: [{ argv: ["nft", "-j", "list", "table", "inet", "bolt"], absent: { stdout: "", stderr: "Error: No such file or directory", code: 1 } }],
  offlineUnchecked: "the generated nft ruleset was not checked with `nft -c` (no kernel offline)",

  desired(ctx) {
    const nft = fragment(ctx.intent, NFT);
    if (!nft) return { resources: [], diagnostics: [] };
    const networks = fragment(ctx.intent, NETWORKS);
    const endpointIps = new Map<string, number>();
    const endpointIps6 = new Map<string, bigint>();
    for (const r of ctx.desired) {
      if (r.kind !== "endpoint") continue;
      if (r.spec.ip) endpointIps.set(r.name, parseIp4(r.spec.ip.split("/")[0]!)!);
      if (r.spec.ip6) endpointIps6.set(r.name, parseIp6(r.spec.ip6.split("/")[0]!)!);
    }
    const m = fragment(ctx.intent, WIREGUARD).mesh;
    const wg = m ? ctx.desired.find((r) => r.id === `wireguard:${m.ifname}`) : undefined;
    const self = m ? { ...m.self, address: wg?.spec.address ? parseIp4(wg.spec.address.split("/")[0]!)! : m.self.address } : undefined;
    const full = fullTunnel(fragment(ctx.intent, WIREGUARD));
    const fullDev = full ? ctx.desired.find((r) => r.id === `wireguard:${full.ifname}`) : undefined;
    const fullTunnelInput = full && {
      ifname: full.ifname,
      addresses: (fullDev?.spec.address ?? "")
        .split(", ")
        .filter(Boolean)
        .map((a) => parseIp4(a.split("/")[0]!)!),
      source: full.mesh && m ? m.source : full.source,
    };
    // Load balancers: the backends the daemon's health check recorded down leave the map (none recorded: all up).
    const withHealth = nft.loadBalancers.some((l) => l.health) && !nft.lbDown.length ? { ...nft, lbDown: readLbDown(ctx.target) } : nft;
    const table = compileTable({
      nft: withHealth,
      networks,
      endpointIps,
      endpointIps6,
      mesh: m && self ? { intent: m, self } : undefined,
      fullTunnel: fullTunnelInput,
    });
    if (!table) return { resources: [], diagnostics: [] };
    const { spec, display } = tableSpec(table);
    const first = networks[0]?.source ?? nft.portForwards[0]?.source ?? nft.rules[0]?.source ?? m?.source ?? fullTunnelInput?.source;
    const fieldSources = Object.fromEntries(table.chains.flatMap((c) => c.rules.filter((r) => r.source).map((r) => [`${c.name} ${r.key}`, r.source!])));
    const resource: Resource = {
      kind: "nft",
      name: TABLE,
      id: `nft:${TABLE}`,
      keys: [`nft:${TABLE}`],
      spec,
      display,
      data: { table },
      deps: [],
      owned: true,
      source: first,
      fieldSources,
    };
    return { resources: [resource], diagnostics: [] };
  },

  // desired drops the backends the health file records down; read shows their health
  planFiles: (t) => [healthFile(t)],
  async read(io, ctx) {
    const list = await io.exec(["nft", "-j", "list", "table", "inet", "bolt"]);
    if (list.code !== 0) {
      if (/No such file or directory/.test(list.stderr)) return { resources: [], foreign: new Map() };
      const nft = fragment(ctx.intent, NFT);
      const needed = !!nft && (fragment(ctx.intent, NETWORKS).length > 0 || nft.portForwards.length > 0 || nft.rules.length > 0);
      if (!needed && list.code === 127) return { resources: [], foreign: new Map() };
      const diagnostics: Diagnostic[] = [
        { severity: "error", message: `cannot read bolt's nft table: ${list.stderr.trim().split("\n")[0] || `nft exited ${list.code}`}` },
      ];
      return { resources: [], foreign: new Map(), diagnostics };
    }
    const { table: live, shape } = parseLive(parseToolJson(["nft", "-j", "list", "table", "inet", "bolt"], list.stdout) as Parameters<typeof parseLive>[0]);
    return {
      resources: [
        {
          kind: "nft",
          name: TABLE,
          id: `nft:${TABLE}`,
          keys: [`nft:${TABLE}`],
          spec: live.spec,
          counters: { ...live.counters, ...lbHealthCounters(live.spec, readLbHealth(io.target)) },
          data: { shape },
          deps: [],
          owned: true,
        },
      ],
      foreign: new Map(),
    };
  },

  /**
   * Only when the table changes: the text to restore on rollback (`nft -s list table`, read
   * now, before anything is written) and `nft -c` — the kernel's own parser and validator
   * reject a bad ruleset before anything runs.
   */
  async prepare(changes, io) {
    const c = changes[0];
    const prepared = new Map<string, Record<string, unknown>>();
    if (!c) return { diagnostics: [] };
    if (c.before?.owned) {
      const snap = await io.exec(["nft", "-s", "list", "table", "inet", "bolt"]);
      if (snap.code === 0) prepared.set(c.id, { snapshot: snap.stdout });
    }
    if (!c.after) return { diagnostics: [], prepared };
    const r = await check(io, writeScript(c));
    return { diagnostics: r ? [{ severity: "error", message: `nft rejects the generated ruleset: ${r}`, source: c.after.source }] : [], prepared };
  },

  render(change, ctx) {
    const ns = ctx.target;
    const before = change.before;
    const snapshot = before ? String(ctx.prepared.get(change.id)?.snapshot ?? "") : "";
    const undoTo: OpLine = before && snapshot ? nftScript(ns, restoreScript(snapshot)) : nftScript(ns, DELETE_SCRIPT);
    if (change.action === "delete") return [{ ...nftScript(ns, DELETE_SCRIPT), phase: "table", undo: [undoTo] }];
    return [{ ...nftScript(ns, writeScript(change)), phase: "table", undo: [undoTo] }];
  },

  impact: dropsTraffic,
};

/**
 * A change that adds or alters a rule that drops or rejects packets can cut live sessions:
 * "connectivity". A new table filters only traffic of bolt's own new networks, except in the
 * input chain (the host's own services, SSH included: the lockout case). Sets, chain order and
 * accepts keep their action's impact.
 */
function dropsTraffic(c: Change): "connectivity" | undefined {
  const after = c.after;
  if (!after || c.action === "delete") return undefined;
  const fields = c.action === "create" ? Object.keys(after.spec).filter((f) => f.startsWith("input ")) : c.changed;
  const dropping = fields.some(
    (f) => !/^(set|chain) /.test(f) && !f.endsWith(" order") && f in after.spec && /\b(drop|reject)\b/.test(after.display?.[f] ?? ""),
  );
  return dropping ? "connectivity" : undefined;
}

/**
 * The script a create or update runs (and `nft -c` checks): the delta when the live table was
 * read and keeps its shape, else the whole table. Pure: prepare and render compute the same.
 */
function writeScript(c: Change): string {
  const table = c.after!.data!.table as NftTable;
  const shape = c.before?.owned ? (c.before.data?.shape as LiveShape | undefined) : undefined;
  if (c.action === "update" && shape) {
    const d = tableDelta(shape, table);
    if (d.mode === "delta") return d.script;
  }
  return tableScript(table);
}

function nftScript(ns: Ns, script: string): OpLine {
  return { tool: "exec", ns, args: ["nft", "-f", "-"], stdin: script };
}

async function check(io: LiveReader, script: string): Promise<string | undefined> {
  const r = await io.runner.run(io.target === null ? ["nft", "-c", "-f", "-"] : ["ip", "netns", "exec", io.target, "nft", "-c", "-f", "-"], script);
  return r.code === 0 ? undefined : r.stderr.trim().split("\n").slice(0, 3).join(" / ") || `nft -c exited ${r.code}`;
}

/**
 * Each balanced backend's health beside its forward rule (`forward lb:NAME:KEY`, one per
 * backend in the kernel): the daemon's verdict from the runtime file, for `bolt show`.
 */
function lbHealthCounters(spec: Record<string, string>, file: HealthFile | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(spec)) {
    const m = /^forward lb:([^:]+):(.+)$/.exec(k);
    if (m) out[k] = backendHealthText(file, `${m[1]}/${m[2]}`);
  }
  return out;
}
