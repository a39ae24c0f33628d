import { parseIp4 } from "../../core/ipv4.js";
import { STAGE } from "../../core/resource.js";
import type { Diagnostic } from "../../core/diagnostics.js";
import type { OpLine, Reconciler, Resource } from "../../core/resource.js";
import type { LiveReader } from "../../core/live-reader.js";
import type { Ns } from "../../exec/runner.js";
import { compileTable } from "./compile.js";
import { parseTable } from "./read.js";
import { DELETE_SCRIPT, TABLE, restoreScript, tableScript, tableSpec } from "./script.js";

/**
 * bolt's nftables state: ONE table `inet bolt` (NAT, isolation, port forwards, firewall rules,
 * DDoS presets, blocklists, segments), written as one `nft -f -` transaction that replaces the
 * whole table atomically, checked with `nft -c` at plan time. Other tables are never listed,
 * flushed or changed. Undo restores the table text read before the apply, in one transaction.
 */
export const nftReconciler: Reconciler = {
  kind: "nft",
  replaceOn: [],

  desired(ctx) {
    if (!ctx.intent.nft) return { resources: [], diagnostics: [] };
    const endpointIps = new Map<string, number>();
    for (const r of ctx.desired) if (r.kind === "endpoint" && r.spec.ip) endpointIps.set(r.name, parseIp4(r.spec.ip.split("/")[0]!)!);
    const m = ctx.intent.mesh;
    const wg = m ? ctx.desired.find((r) => r.id === `wireguard:${m.ifname}`) : undefined;
    const self = m ? { ...m.self, address: wg?.spec.address ? parseIp4(wg.spec.address.split("/")[0]!)! : m.self.address } : undefined;
    const table = compileTable({ nft: ctx.intent.nft, networks: ctx.intent.networks, endpointIps, mesh: m && self ? { intent: m, self } : undefined });
    if (!table) return { resources: [], diagnostics: [] };
    const { spec, display } = tableSpec(table);
    const first = ctx.intent.networks[0]?.source ?? ctx.intent.nft.portForwards[0]?.source ?? ctx.intent.nft.rules[0]?.source ?? ctx.intent.mesh?.source;
    const fieldSources = Object.fromEntries(table.chains.flatMap((c) => c.rules.filter((r) => r.source).map((r) => [`${c.name} ${r.key}`, r.source!])));
    const resource: Resource = { kind: "nft", name: TABLE, id: `nft:${TABLE}`, keys: [`nft:${TABLE}`], spec, display, data: { script: tableScript(table) }, deps: [], owned: true, source: first, fieldSources };
    return { resources: [resource], diagnostics: [] };
  },

  async read(io, ctx) {
    const list = await io.exec(["nft", "-j", "list", "table", "inet", "bolt"]);
    if (list.code !== 0) {
      if (/No such file or directory/.test(list.stderr)) return { resources: [], foreign: new Map() };
      const needed = !!ctx.intent.nft && (ctx.intent.networks.length > 0 || ctx.intent.nft.portForwards.length > 0 || ctx.intent.nft.rules.length > 0);
      if (!needed && list.code === 127) return { resources: [], foreign: new Map() };
      const diagnostics: Diagnostic[] = [{ severity: "error", message: `cannot read bolt's nft table: ${list.stderr.trim().split("\n")[0] || `nft exited ${list.code}`}` }];
      return { resources: [], foreign: new Map(), diagnostics };
    }
    const live = parseTable(JSON.parse(list.stdout));
    return { resources: [{ kind: "nft", name: TABLE, id: `nft:${TABLE}`, keys: [`nft:${TABLE}`], spec: live.spec, data: { counters: live.counters }, deps: [], owned: true }], foreign: new Map() };
  },

  /**
   * Only when the table changes: the text to restore on rollback (`nft -s list table`, read
   * now, before anything is written) and `nft -c` — the kernel's own parser and validator
   * reject a bad ruleset before anything runs.
   */
  async prepare(changes, io) {
    const c = changes[0];
    if (!c) return [];
    if (c.before?.owned) {
      const snap = await io.exec(["nft", "-s", "list", "table", "inet", "bolt"]);
      if (snap.code === 0) c.before.data = { ...c.before.data, snapshot: snap.stdout };
    }
    if (!c.after) return [];
    const r = await check(io, String(c.after.data!.script));
    return r ? [{ severity: "error", message: `nft rejects the generated ruleset: ${r}`, source: c.after.source }] : [];
  },

  render(change, ctx) {
    const ns = ctx.target;
    const before = change.before;
    const snapshot = before ? String(before.data?.snapshot ?? "") : "";
    const undoTo: OpLine = before && snapshot ? nftScript(ns, restoreScript(snapshot)) : nftScript(ns, DELETE_SCRIPT);
    if (change.action === "delete") return [{ ...nftScript(ns, DELETE_SCRIPT), stage: STAGE.nft, undo: [undoTo] }];
    return [{ ...nftScript(ns, String(change.after!.data!.script)), stage: STAGE.nft, undo: [undoTo] }];
  },
};

function nftScript(ns: Ns, script: string): OpLine {
  return { tool: "exec", ns, args: ["nft", "-f", "-"], stdin: script };
}

async function check(io: LiveReader, script: string): Promise<string | undefined> {
  const r = await io.runner.run(io.target === null ? ["nft", "-c", "-f", "-"] : ["ip", "netns", "exec", io.target, "nft", "-c", "-f", "-"], script);
  return r.code === 0 ? undefined : r.stderr.trim().split("\n").slice(0, 3).join(" / ") || `nft -c exited ${r.code}`;
}
