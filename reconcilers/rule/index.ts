import { ROUTE_PROTO } from "../../src/core/conventions.js";
import { fragment } from "../../src/core/intent.js";
import type { OpLine, Reconciler, Resource } from "../../src/core/resource.js";
import type { Ns } from "../../src/exec/runner.js";
import { EXIT, WIREGUARD, fullTunnel, fullTunnelHas6 } from "../wireguard/intent.js";
import { POLICIES, POLICY_MARK, policyIntent } from "./intent.js";
import type { PolicyIntent } from "./intent.js";

/**
 * Policy routing rules (exit node, wg-quick's scheme): first `lookup main suppress_prefixlength 0`
 * (everything but the default route — local subnets and the underlay — stays on main), then
 * `not fwmark M lookup T` (all else to the tunnel table, except WireGuard's own marked packets).
 * Owned rules carry protocol 176 and a priority in bolt's band 20000–20999. A tunnel that also
 * carries ::/0 (an IPv6 full tunnel, a mesh exit node with IPv6) gets the same two rules in
 * the IPv6 rule list (`ip -6 rule`), named "v6:PRIORITY".
 */
interface IpRule {
  priority: number;
  table?: string;
  not?: null;
  fwmark?: string;
  fwmask?: string;
  suppress_prefixlen?: number;
  iif?: string;
  oif?: string;
  uid_start?: number;
  uid_end?: number;
  protocol?: string;
}

export const ruleReconciler: Reconciler = {
  kind: "rule",
  // Rules send traffic to the tunnel's table: only once its default route is there.
  phases: { rule: { after: ["route.route"] } },
  uses: ["wireguard"],
  intent: policyIntent,
  // A rule is its whole match: changing the table adds a rule next to the old one, so it is a replace.
  replaceOn: ["selector", "table"],
  readScope: [{ ip: ["rule", "show"] }, { ip: ["-6", "rule", "show"] }],

  desired(ctx) {
    const resources: Resource[] = [];
    const wg = fragment(ctx.intent, WIREGUARD);
    // A full tunnel (a [wireguard.X] peer with 0.0.0.0/0, or the mesh's exit node), as wg-quick does it.
    const w = fullTunnel(wg);
    if (w) {
      const source = w.mesh && wg.mesh ? wg.mesh.source : w.source;
      const fams: ("4" | "6")[] = [
        ...(w.peers.some((p) => p.allowedIps.some((c) => c.prefix === 0)) ? ["4" as const] : []),
        ...(fullTunnelHas6(w) ? ["6" as const] : []),
      ];
      for (const f of fams) {
        resources.push(rule(EXIT.prioSuppress, "suppress_prefixlength 0", "main", source, f));
        resources.push(rule(EXIT.prioDefault, `not fwmark 0x${EXIT.fwmark.toString(16)}/0x${EXIT.mask.toString(16)}`, String(EXIT.table), source, f));
      }
    }
    // [[routing.policies]]: bolt's mark and the rule's own selectors → the policy's table.
    for (const p of fragment(ctx.intent, POLICIES)) resources.push(rule(p.priority, policySelector(p), String(p.table), p.source, p.family === 6 ? "6" : "4"));
    return { resources, diagnostics: [] };
  },

  async read(io) {
    const [v4, v6] = await Promise.all([io.ipJson<IpRule[]>(["rule", "show"]), io.ipJson<IpRule[]>(["-6", "rule", "show"])]);
    const mine = (rules: IpRule[], f: "4" | "6") =>
      rules.filter((r) => r.protocol === ROUTE_PROTO).map((r) => rule(r.priority, selectorOf(r), r.table ?? "", undefined, f));
    return { resources: [...mine(v4, "4"), ...mine(v6, "6")], foreign: new Map() };
  },

  render(change, ctx) {
    const ns = ctx.target;
    if (change.action === "delete") return [{ ...del(ns, change.before!), phase: "rule", destroy: true, undo: [add(ns, change.before!)] }];
    return [{ ...add(ns, change.after!), phase: "rule", undo: [del(ns, change.after!)] }];
  },

  // A policy rule decides where all of the host's traffic goes (full tunnel or not).
  impact: () => "connectivity",
};

/** A policy's selector in the order ip prints a rule's (fwmark, iif, oif, uidrange), so it compares with the live one. */
function policySelector(p: PolicyIntent): string {
  return [
    ...(p.mark !== undefined ? [`fwmark 0x${p.mark.toString(16)}/0x${POLICY_MARK.mask.toString(16)}`] : []),
    ...(p.iif ? [`iif ${p.iif}`] : []),
    ...(p.oif ? [`oif ${p.oif}`] : []),
    ...(p.uidrange ? [`uidrange ${p.uidrange[0]}-${p.uidrange[1]}`] : []),
  ].join(" ");
}

function selectorOf(r: IpRule): string {
  if (r.suppress_prefixlen !== undefined) return `suppress_prefixlength ${r.suppress_prefixlen}`;
  return [
    ...(r.fwmark ? [`${"not" in r ? "not " : ""}fwmark ${r.fwmark}/${r.fwmask ?? "0xffffffff"}`] : []),
    ...(r.iif ? [`iif ${r.iif}`] : []),
    ...(r.oif ? [`oif ${r.oif}`] : []),
    ...(r.uid_start !== undefined ? [`uidrange ${r.uid_start}-${r.uid_end ?? r.uid_start}`] : []),
  ].join(" ");
}

function rule(priority: number, selector: string, table: string, source: Resource["source"] | undefined, family: "4" | "6"): Resource {
  const name = family === "6" ? `v6:${priority}` : String(priority);
  const r: Resource = { kind: "rule", name, id: `rule:${name}`, keys: [`rule:${name}`], spec: { selector, table }, deps: [], owned: true, source };
  if (family === "6") r.data = { family: "6", priority };
  return r;
}

function add(ns: Ns, r: Resource): OpLine {
  const sel = r.spec.selector!.split(" ").filter(Boolean);
  // `suppress_prefixlength` belongs after the table in ip's grammar; fwmark selectors before it.
  const [before, after] = sel[0] === "suppress_prefixlength" ? [[], sel] : [sel, []];
  const args = [
    "rule",
    "add",
    "priority",
    r.data?.family === "6" ? String(r.data.priority) : r.name,
    ...before,
    "table",
    r.spec.table!,
    ...after,
    "protocol",
    ROUTE_PROTO,
  ];
  return family(ns, r, args);
}

/** Deletes exactly this rule (priority, selector and table), never another one at the same priority. */
function del(ns: Ns, r: Resource): OpLine {
  const a = add(ns, r);
  const at = a.args.indexOf("add");
  return { ...a, args: [...a.args.slice(0, at), "del", ...a.args.slice(at + 1)] };
}

/** An IPv4 rule is a line of bolt's `ip -batch`; an IPv6 one a line of its `ip -6 -batch` (tools.ts). */
function family(ns: Ns, r: Resource, args: string[]): OpLine {
  return { tool: r.data?.family === "6" ? "ip6" : "ip", ns, args };
}
