import { encodeAlias } from "../../src/core/ownership.js";
import { RangeIndex, broadcastOf, formatCidr4, formatIp4, parseCidr4, rangeOf } from "../../src/core/ipv4.js";
import { formatCidr6, formatIfAddr6, overlaps6, parseCidr6 } from "../../src/core/ipv6.js";
import { fragment } from "../../src/core/intent.js";
import type { Change, Impact, OpLine, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { IpAddr, IpLink, IpRoute } from "../../src/core/live-reader.js";
import type { Ns } from "../../src/exec/runner.js";
import { LINK_LOCAL } from "./link-local.js";
import { parseNetworks } from "./read.js";
import { NETWORKS, networkIntent } from "./intent.js";

/**
 * `[networks.NAME]` / volantd bridge: a Linux bridge with the gateway address, MTU, link up.
 * IPv6 address generation is off (addrgenmode none): an IPv4-only bridge needs no link-local
 * address, and thousands of fe80 routes slow every later link-up; a dual-stack one gets
 * LINK_LOCAL (link-local.ts).
 */
export const networkReconciler: Reconciler = {
  kind: "network",
  // Endpoint namespaces first, as bolt always has: the cheapest write, and a namespace that
  // cannot be made fails the apply before any bridge exists.
  phases: { link: { after: ["endpoint.netns"] } },
  intent: networkIntent,
  replaceOn: ["bridge"],
  readScope: [{ ip: ["-d", "link", "show"] }, { ip: ["addr", "show"] }, { ip: ["-4", "route", "show", "table", "all"] }],
  offlineReads: [
    { argv: ["ip", "-j", "-4", "route", "show", "table", "all"], absent: { stdout: "[]", stderr: "", code: 0 } },
    { argv: ["ip", "-j", "-6", "route", "show", "table", "all"], absent: { stdout: "[]", stderr: "", code: 0 } },
    // Link names and ownership aliases are all a conflict check needs of `ip -d link show` (no MACs, no stats).
    { argv: ["ip", "-j", "-d", "link", "show"], absent: { stdout: "[]", stderr: "", code: 0 }, minimize: minimalLinks },
  ],

  desired(ctx) {
    const resources = fragment(ctx.intent, NETWORKS).map(
      (n): Resource => ({
        kind: "network",
        name: n.name,
        id: `network:${n.name}`,
        keys: [`link:${n.bridge}`],
        spec: {
          bridge: n.bridge,
          address: [`${formatIp4(n.gateway)}/${n.subnet.prefix}`, ...(n.v6 ? addresses6(n.v6) : [])].join(", "),
          // `brd +` (what CNI's bridge plugin sets): LAN discovery asks the interface for it, and the kernel keeps none unless told.
          broadcast: formatIp4(broadcastOf(n.subnet)),
          mtu: String(n.mtu),
          state: "up",
        } satisfies NetworkSpec,
        data: { subnet: formatCidr4(n.subnet), ...(n.v6 ? { subnet6: formatCidr6(n.v6.subnet) } : {}) },
        deps: [],
        owned: true,
        source: n.source,
        fieldSources: n.fieldSources,
      }),
    );
    return { resources, diagnostics: [] };
  },

  async read(io) {
    const [links, addrs] = await Promise.all([io.ipJson<IpLink[]>(["-d", "link", "show"]), io.ipJson<IpAddr[]>(["addr", "show"])]);
    return parseNetworks(links, addrs);
  },

  /** A desired subnet overlapping a route bolt does not own would black-hole one of them. */
  async conflicts(desired, io) {
    const [routes, links] = await Promise.all([io.ipJson<IpRoute[]>(["-4", "route", "show", "table", "all"]), io.ipJson<IpLink[]>(["-d", "link", "show"])]);
    const ownedIfs = new Set(links.filter((l) => l.ifalias?.startsWith("bolt1,")).map((l) => l.ifname));
    const out: Diagnostic[] = [];
    const foreign = new RangeIndex(
      routes.flatMap((rt) => {
        if (rt.dst === "default" || (rt.type && rt.type !== "unicast") || (rt.dev && ownedIfs.has(rt.dev))) return [];
        const c = parseCidr4(rt.dst.includes("/") ? rt.dst : `${rt.dst}/32`);
        return c ? [{ ...rangeOf(c), value: rt }] : [];
      }),
    );
    out.push(...(await conflicts6(desired, io, ownedIfs)));
    for (const r of desired) {
      const subnet = parseCidr4(String(r.data?.subnet));
      const rt = subnet && foreign.find(rangeOf(subnet).start, rangeOf(subnet).end);
      if (subnet && rt)
        out.push({
          severity: "error",
          message: `network "${r.name}": subnet ${formatCidr4(subnet)} overlaps the existing route ${rt.dst}${rt.dev ? ` dev ${rt.dev}` : ""}${rt.table && rt.table !== "main" ? ` table ${rt.table}` : ""}`,
          source: r.fieldSources?.subnet ?? r.source,
          hint: "pick a free subnet or remove that route",
        });
    }
    return out;
  },

  render(change, ctx) {
    const ns = ctx.target;
    // This kind's resources (desired and read) carry its spec type.
    const before = change.before as Net | undefined;
    const after = change.after as Net | undefined;
    if (change.action === "create") return createOps(after!, ns);
    if (change.action === "delete") return deleteOps(before!, ns);
    return updateOps(before!, after!, change.changed, ns);
  },

  impact: connectivityImpact,
};

/** A dual-stack bridge's IPv6 addresses as `ip addr` lists them once read (read.ts sorts): the gateway and LINK_LOCAL. */
function addresses6(v6: { gateway: Parameters<typeof formatIfAddr6>[0]; subnet: { prefix: number } }): string[] {
  return [formatIfAddr6(v6.gateway, v6.subnet.prefix), LINK_LOCAL].sort();
}

/** The IPv6 half of the conflict check, read only when a desired network has IPv6. */
async function conflicts6(desired: Resource[], io: Parameters<NonNullable<Reconciler["conflicts"]>>[1], ownedIfs: Set<string>): Promise<Diagnostic[]> {
  const wanted = desired.filter((r) => r.data?.subnet6);
  if (!wanted.length) return [];
  const routes = await io.ipJson<IpRoute[]>(["-6", "route", "show", "table", "all"]);
  const foreign = routes.flatMap((rt) => {
    // fe80::/64 and multicast routes are the kernel's own on every IPv6 link.
    if (rt.dst === "default" || (rt.type && rt.type !== "unicast") || (rt.dev && ownedIfs.has(rt.dev))) return [];
    const c = parseCidr6(rt.dst.includes("/") ? rt.dst : `${rt.dst}/128`);
    return c && c.prefix > 0 && !overlaps6(c, LINK_LOCAL_NET) ? [{ c, rt }] : [];
  });
  const out: Diagnostic[] = [];
  for (const r of wanted) {
    const subnet = parseCidr6(String(r.data!.subnet6))!;
    const hit = foreign.find((f) => overlaps6(f.c, subnet));
    if (hit)
      out.push({
        severity: "error",
        message: `network "${r.name}": ipv6 subnet ${formatCidr6(subnet)} overlaps the existing route ${hit.rt.dst}${hit.rt.dev ? ` dev ${hit.rt.dev}` : ""}${hit.rt.table && hit.rt.table !== "main" ? ` table ${hit.rt.table}` : ""}`,
        source: r.fieldSources?.subnet6 ?? r.source,
        hint: "pick a free prefix or remove that route",
      });
  }
  return out;
}

const LINK_LOCAL_NET = parseCidr6("fe80::/10")!;

/** Fields whose change moves addresses, routes or ports that live traffic depends on. */
const CONNECTIVITY_FIELDS = ["address", "ip", "broadcast", "gateway", "bridge", "netns", "state"];

/** Networks and endpoints carry traffic: moving or removing one cuts it. */
export function connectivityImpact(c: Change): Impact | undefined {
  if (c.action === "update") return c.changed.some((f) => CONNECTIVITY_FIELDS.includes(f)) ? "connectivity" : undefined;
  return c.action === "create" ? undefined : "connectivity";
}

function minimalLinks(stdout: string): string {
  const links = (stdout.trim() ? JSON.parse(stdout) : []) as { ifname: string; ifalias?: string }[];
  return JSON.stringify(links.map((l) => (l.ifalias ? { ifname: l.ifname, ifalias: l.ifalias } : { ifname: l.ifname })));
}

const line = (ns: Ns, ...args: string[]): OpLine => ({ tool: "ip", ns, args });

/** A network's comparable state: what `ip -d link` and `ip addr` show of its bridge. */
export type NetworkSpec = { bridge: string; address: string; broadcast: string; mtu: string; state: string };
type Net = Resource<NetworkSpec>;

function aliasOf(r: Net): string {
  return encodeAlias({ net: r.name });
}

function addrList(spec: NetworkSpec): string[] {
  return spec.address ? spec.address.split(", ").filter(Boolean) : [];
}

/**
 * An address on the bridge. IPv6 ones skip duplicate address detection (`nodad`): bolt owns the
 * gateway, and a bridge without ports has no carrier, so DAD would leave it `tentative` (unusable)
 * until the first endpoint comes up. IPv4 ones get their subnet's broadcast address (`broadcast +`)
 * when the spec has one.
 */
function addLine(ns: Ns, a: string, dev: string, brd = true): OpLine {
  return line(ns, "address", "add", a, ...(a.includes(":") ? [] : brd ? ["broadcast", "+"] : []), "dev", dev, ...(a.includes(":") ? ["nodad"] : []));
}

function createLines(r: Net, ns: Ns): OpLine[] {
  const br = r.spec.bridge;
  return [
    line(ns, "link", "add", "name", br, "mtu", r.spec.mtu, "type", "bridge"),
    line(ns, "link", "set", "dev", br, "alias", aliasOf(r), "addrgenmode", "none"),
    ...addrList(r.spec).map((a) => addLine(ns, a, br, !!r.spec.broadcast)),
    ...(r.spec.state === "up" ? [line(ns, "link", "set", "dev", br, "up")] : []),
  ];
}

function createOps(r: Net, ns: Ns): RenderedOp[] {
  const br = r.spec.bridge;
  const [add, ...rest] = createLines(r, ns);
  // Undo of the first line removes everything later lines add, so they need no undo of their own.
  return [{ ...add!, phase: "link", undo: [line(ns, "link", "del", "dev", br)] }, ...rest.map((l) => ({ ...l, phase: "link", undo: [] }))];
}

function deleteOps(r: Net, ns: Ns): RenderedOp[] {
  const br = r.spec.bridge;
  // The ports the bridge had (endpoints kept across a replace) lose their master with it.
  const reattach = ((r.data?.ports as string[] | undefined) ?? []).map((p) => line(ns, "link", "set", "dev", p, "master", br));
  return [{ ...line(ns, "link", "del", "dev", br), phase: "link", undo: [...createLines(r, ns), ...reattach] }];
}

function updateOps(before: Net, after: Net, changed: string[], ns: Ns): RenderedOp[] {
  const br = after.spec.bridge;
  const ops: RenderedOp[] = [];
  if (changed.includes("mtu"))
    ops.push({
      ...line(ns, "link", "set", "dev", br, "mtu", after.spec.mtu),
      phase: "link",
      undo: [line(ns, "link", "set", "dev", br, "mtu", before.spec.mtu)],
    });
  if (changed.includes("address") || changed.includes("broadcast")) {
    const bb = !!before.spec.broadcast;
    const ab = !!after.spec.broadcast;
    // The kernel changes an IPv4 address's broadcast only by deleting and adding it (a replace keeps the old one).
    const again = (a: string) => !a.includes(":") && bb !== ab;
    const want = new Set(addrList(after.spec));
    const have = new Set(addrList(before.spec));
    for (const a of have)
      if (!want.has(a) || again(a)) ops.push({ ...line(ns, "address", "del", a, "dev", br), phase: "link", undo: [addLine(ns, a, br, bb)] });
    for (const a of want)
      if (!have.has(a) || again(a)) ops.push({ ...addLine(ns, a, br, ab), phase: "link", undo: [line(ns, "address", "del", a, "dev", br)] });
  }
  if (changed.includes("state")) {
    const to = after.spec.state === "up" ? "up" : "down";
    ops.push({ ...line(ns, "link", "set", "dev", br, to), phase: "link", undo: [line(ns, "link", "set", "dev", br, to === "up" ? "down" : "up")] });
  }
  return ops;
}
