import { contains, formatCidr4, parseCidr4, parseIp4 } from "../../src/core/ipv4.js";
import { contains6, formatCidr6, parseCidr6 } from "../../src/core/ipv6.js";
import type { Cidr6 } from "../../src/core/ipv6.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { ROUTE_PROTO } from "../../src/core/conventions.js";
import type { Diagnostic, SourcePos } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import type { OpLine, Reconciler, Resource } from "../../src/core/resource.js";
import type { IpRoute, LiveReader } from "../../src/core/live-reader.js";
import type { Ns } from "../../src/exec/runner.js";
import { EXIT, WIREGUARD } from "../wireguard/intent.js";
import { NETWORKS } from "../network/intent.js";
import { STATIC_ROUTES, routeIntent } from "./intent.js";
import { POLICIES } from "../rule/intent.js";
import type { StaticRoute } from "./intent.js";

/**
 * Routes bolt installs in the target: one per WireGuard allowed IP (routes follow allowed-IPs
 * changes, which `wg syncconf` does not do), and the exit node's default routes (0.0.0.0/0 and
 * ::/0) in bolt's own table. Owned routes carry rtnetlink protocol 176; a desired route never replaces a foreign one.
 */
export const routeReconciler: Reconciler = {
  kind: "route",
  // A route needs its device up with an address (the source the kernel picks), like wg-quick after the peers.
  // Static routes' next hops may sit behind a bolt bridge or endpoint: after those too.
  // A route in a named table: ip resolves the name from bolt's rt_tables.d file, written first.
  phases: { route: { after: ["wireguard.addr", "wg-peer.peer", "network.link", "endpoint.inside", "rt-table.file"] } },
  uses: ["wireguard", "network", "rule"],
  intent: routeIntent,
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
    // [[routing.routes]]: a next hop inside a bolt network counts as connected (the bridge may not exist yet).
    const nets = fragment(ctx.intent, NETWORKS);
    for (const sr of fragment(ctx.intent, STATIC_ROUTES)) resources.push(staticRoute(sr, nets));
    // A routing policy's table: its default route via the policy's gateway or device.
    for (const p of fragment(ctx.intent, POLICIES))
      resources.push(
        staticRoute(
          { family: p.family, dst: p.family === 6 ? "::/0" : "default", table: String(p.table), via: p.via, dev: p.dev, source: p.source, at: {} },
          nets,
        ),
      );
    const seen = new Set<string>();
    return { resources: resources.filter((r) => !seen.has(r.id) && seen.add(r.id)), diagnostics: [] };
  },

  async read(io) {
    const routes = await allRoutes(io);
    const resources = routes
      .filter((r) => r.protocol === ROUTE_PROTO)
      .map((r) => ({ ...route(normDst(r.dst), r.table ?? "main", r.dev ?? ""), spec: liveSpec(r) }));
    return { resources, foreign: new Map() };
  },

  async conflicts(desired, io) {
    const routes = await allRoutes(io);
    const out: Diagnostic[] = [];
    // Foreign routes by table and destination: one lookup per desired route (10k routes against 10k).
    const foreign = new Map<string, IpRoute[]>();
    for (const r of routes) {
      if (r.protocol === ROUTE_PROTO || (r.type && r.type !== "unicast")) continue;
      const k = `${r.table ?? "main"} ${normDst(r.dst)}`;
      foreign.set(k, [...(foreign.get(k) ?? []), r]);
    }
    for (const d of desired) {
      const table = String(d.data!.table);
      const hit = foreign.get(`${table} ${String(d.data!.dst)}`)?.find((r) => !(r.protocol === "kernel" && r.dev === d.spec.dev));
      if (hit)
        out.push({
          severity: "error",
          message: `route ${d.data!.dst} (table ${table}) already exists and is not bolt's (dev ${hit.dev ?? "?"}, proto ${hit.protocol ?? "boot"}); bolt will not replace it`,
          source: d.source,
        });
    }
    out.push(...unreachableHops(desired, routes));
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
  const s = r.spec;
  const devs = (r.data?.hopDevs ?? {}) as Record<string, string>;
  // `nexthop` clauses end the command line (ip reads everything after one as its arguments).
  const multipath = s.nexthops
    ? s.nexthops.split(",").flatMap((h) => {
        const [via, weight] = h.split("*") as [string, string];
        return ["nexthop", "via", via, ...(devs[via] ? ["dev", devs[via]] : []), "weight", weight];
      })
    : [];
  const single = s.nexthops ? [] : [...(s.via ? ["via", s.via] : []), ...(s.dev || r.data?.dev ? ["dev", s.dev || String(r.data!.dev)] : [])];
  return {
    tool: "ip",
    ns,
    args: [
      "route",
      "replace",
      ...(s.type ? [s.type] : []),
      String(r.data!.dst),
      ...single,
      "table",
      String(r.data!.table),
      "proto",
      ROUTE_PROTO,
      ...extras(s),
      ...multipath,
    ],
  };
}

function del(ns: Ns, r: Resource): OpLine {
  const s = r.spec;
  return {
    tool: "ip",
    ns,
    args: [
      "route",
      "del",
      ...(s.type ? [s.type] : []),
      String(r.data!.dst),
      "table",
      String(r.data!.table),
      "proto",
      ROUTE_PROTO,
      ...(s.metric ? ["metric", s.metric] : []),
    ],
  };
}

/** metric, mtu, src: written only when set (and read back only when not the kernel's default). */
function extras(s: Record<string, string | undefined>): string[] {
  return [...(s.metric ? ["metric", s.metric] : []), ...(s.mtu ? ["mtu", s.mtu] : []), ...(s.src ? ["src", s.src] : [])];
}

/** A static route as a resource: the spec keys bolt compares, only those the config sets. */
function staticRoute(sr: StaticRoute, nets: { subnet: { network: number; prefix: number }; v6?: { subnet: { network: bigint; prefix: number } } }[]): Resource {
  // With a gateway the kernel picks the device (and reports it): the device is compared only for a gateway-less route.
  const spec: Record<string, string> = { dev: sr.via ? "" : (sr.dev ?? ""), via: sr.via ?? "" };
  if (sr.nexthops) spec.nexthops = nexthopText(sr.nexthops);
  if (sr.metric !== undefined && !(sr.metric === 0 && sr.family === 4) && !(sr.metric === 1024 && sr.family === 6)) spec.metric = String(sr.metric);
  if (sr.type) spec.type = sr.type;
  if (sr.mtu !== undefined) spec.mtu = String(sr.mtu);
  if (sr.src) spec.src = sr.src;
  const hops = sr.nexthops?.map((h) => h.via) ?? (sr.via ? [sr.via] : []);
  const inNet = (ip: string) =>
    nets.some((n) => (ip.includes(":") ? !!n.v6 && contains6(n.v6.subnet, parseCidr6(ip)!.addr) : contains(n.subnet, parseIp4(ip)!)));
  return {
    ...route(sr.dst, sr.table, sr.dev ?? "", sr.source),
    spec,
    deps: [],
    data: {
      dst: sr.dst,
      table: sr.table,
      ...(sr.via && sr.dev ? { dev: sr.dev } : {}),
      static: true,
      hops: hops.filter((h) => !inNet(h)),
      hopDevs: Object.fromEntries((sr.nexthops ?? []).filter((h) => h.dev).map((h) => [h.via, h.dev])),
      fieldSources: sr.at,
    },
    fieldSources: { ...(sr.at.via ? { via: sr.at.via, nexthops: sr.at.via } : {}) },
  };
}

/**
 * "10.0.1.2*1,10.0.2.2*1": next hops and weights as one comparable string, in address order
 * (a hop's device is the kernel's choice unless given: compared through the hop's gateway only).
 */
function nexthopText(hops: { via: string; weight: number }[]): string {
  return hops
    .map((h) => `${h.via}*${h.weight}`)
    .sort()
    .join(",");
}

type LiveRoute = IpRoute & {
  metric?: number;
  prefsrc?: string;
  metrics?: { mtu?: number }[];
  nexthops?: { gateway?: string; dev?: string; weight?: number }[];
};

/** What the kernel has for one of bolt's routes, in the spec's terms (defaults left out, as desired leaves them). */
function liveSpec(r: LiveRoute): Record<string, string> {
  const v6 = r.dst.includes(":") || r.gateway?.includes(":") || !!r.nexthops?.some((h) => h.gateway?.includes(":"));
  const spec: Record<string, string> = { dev: r.gateway ? "" : (r.dev ?? ""), via: r.gateway ?? "" };
  if (r.nexthops?.length) {
    spec.nexthops = nexthopText(r.nexthops.map((h) => ({ via: h.gateway ?? "", weight: h.weight ?? 1 })));
  }
  if (r.metric !== undefined && !(r.metric === 0 && !v6) && !(r.metric === 1024 && v6)) spec.metric = String(r.metric);
  if (r.type && r.type !== "unicast") spec.type = r.type;
  const mtu = r.metrics?.find((m) => m.mtu !== undefined)?.mtu;
  if (mtu !== undefined) spec.mtu = String(mtu);
  if (r.prefsrc) spec.src = r.prefsrc;
  return spec;
}

/** A static route's next hop must be reachable: inside a subnet the target is connected to (or a bolt network). */
function unreachableHops(desired: Resource[], routes: IpRoute[]): Diagnostic[] {
  // On-link prefixes of the main table: IPv4 marks them scope link, IPv6 lists its connected prefixes without a scope (no gateway, proto kernel).
  const connected = routes.filter(
    (r) =>
      (r.table ?? "main") === "main" &&
      r.dst.includes("/") &&
      !r.gateway &&
      ((r as { scope?: string }).scope === "link" || (r.dst.includes(":") && r.protocol === "kernel" && !r.dst.startsWith("fe80:"))),
  );
  const out: Diagnostic[] = [];
  for (const d of desired) {
    for (const hop of (d.data?.hops as string[] | undefined) ?? []) {
      const ok = connected.some((c) => {
        if (hop.includes(":") !== c.dst.includes(":")) return false;
        if (hop.includes(":")) {
          const p = parseCidr6(c.dst);
          return !!p && contains6(p, parseCidr6(hop)!.addr);
        }
        const p = parseCidr4(c.dst);
        return !!p && contains(p, parseIp4(hop)!);
      });
      if (!ok)
        out.push({
          severity: "error",
          message: `route ${d.data!.dst}: next hop ${hop} is outside every subnet the target is connected to`,
          source: (d.data?.fieldSources as Record<string, SourcePos> | undefined)?.via ?? d.source,
          hint: "a gateway must be on a directly connected subnet (an interface's address, or a bolt network)",
        });
    }
  }
  return out;
}
