import { contains, formatCidr4 } from "../../src/core/ipv4.js";
import { contains6, formatCidr6, parseCidr6 } from "../../src/core/ipv6.js";
import type { Cidr6 } from "../../src/core/ipv6.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { ROUTE_PROTO } from "../../src/core/conventions.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import type { OpLine, Reconciler, Resource } from "../../src/core/resource.js";
import type { IpRoute, LiveReader } from "../../src/core/live-reader.js";
import type { Ns } from "../../src/exec/runner.js";
import { EXIT, WIREGUARD } from "../wireguard/intent.js";

/**
 * Routes bolt installs in the target: one per WireGuard allowed IP (routes follow allowed-IPs
 * changes, which `wg syncconf` does not do), and the exit node's default routes (0.0.0.0/0 and
 * ::/0) in bolt's own table. Owned routes carry rtnetlink protocol 176; a desired route never replaces a foreign one.
 */
export const routeReconciler: Reconciler = {
  kind: "route",
  // A route needs its device up with an address (the source the kernel picks), like wg-quick after the peers.
  phases: { route: { after: ["wireguard.addr", "wg-peer.peer"] } },
  uses: ["wireguard"],
  replaceOn: [],
  readScope: [{ ip: ["-4", "route", "show", "table", "all"] }, { ip: ["-6", "route", "show", "table", "all"] }],

  desired(ctx) {
    const resources: Resource[] = [];
    for (const w of fragment(ctx.intent, WIREGUARD).interfaces) {
      // Like wg-quick: no route for an allowed IP the interface's own prefix already routes
      // there (10.0.9.2/32 on a 10.0.9.1/24 interface: the kernel's connected route covers it).
      const own = w.address ? [w.address, ...(w.moreAddresses ?? [])] : [];
      const covered = (c: Cidr4) => c.prefix > 0 && own.some((a) => a.prefix <= c.prefix && contains(a, c.network));
      const own6 = (w.addresses6 ?? []).map((a) => parseCidr6(a)!);
      const covered6 = (c: Cidr6) => own6.some((a) => a.prefix <= c.prefix && contains6(a, c.network));
      for (const p of w.peers) {
        for (const c of p.allowedIps.filter((x) => !covered(x))) {
          const table = c.prefix === 0 ? String(EXIT.table) : "main";
          const dst = c.prefix === 0 ? "default" : formatCidr4(c);
          resources.push(route(dst, table, w.ifname, p.source));
        }
        // ::/0 (an IPv6 full tunnel or exit node) goes to bolt's table, like 0.0.0.0/0.
        for (const c of (p.allowedIps6 ?? []).map((x) => parseCidr6(x)!).filter((x) => x.prefix === 0 || !covered6(x)))
          resources.push(route(formatCidr6(c), c.prefix === 0 ? String(EXIT.table) : "main", w.ifname, p.source));
      }
    }
    const seen = new Set<string>();
    return { resources: resources.filter((r) => !seen.has(r.id) && seen.add(r.id)), diagnostics: [] };
  },

  async read(io) {
    const routes = await allRoutes(io);
    const resources = routes
      .filter((r) => r.protocol === ROUTE_PROTO)
      .map((r) => ({ ...route(normDst(r.dst), r.table ?? "main", r.dev ?? ""), spec: { dev: r.dev ?? "", via: r.gateway ?? "" } }));
    return { resources, foreign: new Map() };
  },

  async conflicts(desired, io) {
    const routes = await allRoutes(io);
    const out: Diagnostic[] = [];
    for (const d of desired) {
      const table = String(d.data!.table);
      const hit = routes.find(
        (r) =>
          r.protocol !== ROUTE_PROTO &&
          (r.table ?? "main") === table &&
          normDst(r.dst) === d.data!.dst &&
          !(r.protocol === "kernel" && r.dev === d.spec.dev) &&
          (!r.type || r.type === "unicast"),
      );
      if (hit)
        out.push({
          severity: "error",
          message: `route ${d.data!.dst} (table ${table}) already exists and is not bolt's (dev ${hit.dev ?? "?"}, proto ${hit.protocol ?? "boot"}); bolt will not replace it`,
          source: d.source,
        });
    }
    return out;
  },

  render(change, ctx) {
    const ns = ctx.target;
    if (change.action === "delete") return [{ ...del(ns, change.before!), phase: "route", destroy: true, undo: [replace(ns, change.before!)] }];
    return [{ ...replace(ns, change.after!), phase: "route", undo: [change.action === "create" ? del(ns, change.after!) : replace(ns, change.before!)] }];
  },

  // Routes carry the tunnel's traffic: any change but a new one moves live traffic.
  impact: (c) => (c.action === "create" ? undefined : "connectivity"),
};

/** ip prints host routes without "/32". */
/** ip prints a host route without its length: /32, or /128 for IPv6. */
function normDst(dst: string): string {
  return dst === "default" || dst.includes("/") ? dst : `${dst}/${dst.includes(":") ? 128 : 32}`;
}

/** Both families' routes (bolt's IPv6 ones are the peers' IPv6 allowed IPs). */
async function allRoutes(io: LiveReader): Promise<IpRoute[]> {
  const [v4, v6] = await Promise.all([
    io.ipJson<IpRoute[]>(["-4", "route", "show", "table", "all"]),
    io.ipJson<IpRoute[]>(["-6", "route", "show", "table", "all"]),
  ]);
  // An IPv6 default route is "default" too: keep it apart from IPv4's.
  return [...v4, ...v6.map((r) => (r.dst === "default" ? { ...r, dst: "::/0" } : r))];
}

function route(dst: string, table: string, dev: string, source?: Resource["source"]): Resource {
  return {
    kind: "route",
    name: `${table}/${dst}`,
    id: `route:${table}/${dst}`,
    keys: [],
    spec: { dev, via: "" },
    data: { dst, table },
    deps: dev ? [`wireguard:${dev}`] : [],
    owned: true,
    source,
  };
}

function replace(ns: Ns, r: Resource): OpLine {
  const via = r.spec.via ? ["via", r.spec.via] : [];
  return { tool: "ip", ns, args: ["route", "replace", String(r.data!.dst), ...via, "dev", r.spec.dev!, "table", String(r.data!.table), "proto", ROUTE_PROTO] };
}

function del(ns: Ns, r: Resource): OpLine {
  return { tool: "ip", ns, args: ["route", "del", String(r.data!.dst), "table", String(r.data!.table), "proto", ROUTE_PROTO] };
}
