import { broadcastOf, formatIp4 } from "../../src/core/ipv4.js";
import { formatIfAddr6, formatIp6 } from "../../src/core/ipv6.js";
import { decodeAlias, encodeAlias } from "../../src/core/ownership.js";
import { INNER_IFNAME, ROUTE_PROTO } from "../../src/core/conventions.js";
import { fragment } from "../../src/core/intent.js";
import type { Change, OpLine, PlanContext, ReadContext, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import type { IpLink, IpRoute, LiveReader } from "../../src/core/live-reader.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { Ns } from "../../src/exec/runner.js";
import { connectivityImpact } from "../network/index.js";
import { NETWORKS } from "../network/intent.js";
import { ENDPOINTS, endpointIfname, endpointIntent } from "./intent.js";
import type { EndpointIntent } from "./intent.js";
import { assignAddresses, lease6Key } from "./ipam.js";
import { neighbourTableWarning } from "./neighbours.js";
import { INSIDE_READ, parseEndpoints, readInside } from "./read.js";

/**
 * `[[endpoints]]`: a veth pair whose far end is `eth0` in the endpoint's namespace (created
 * when missing, deleted on destroy only if bolt created it), with an address and a default
 * route via the gateway; or, with `tap = true`, a tap device on the bridge for a VM.
 * Several endpoints in one namespace are eth0, eth1, …: one default route (through the
 * `default = true` one, else the first), the other networks reached by their connected routes.
 * `mode = "none"`: the namespace with only lo, up; `mode = "host"`: nothing at all.
 */
export const endpointReconciler: Reconciler = {
  kind: "endpoint",
  // The namespace exists before its veth end is moved into it; the host end joins a bridge.
  // A namespace bolt creates is marked (its lo's alias) before anything goes into it, so it is
  // recognised from the kernel alone even if bolt dies before the veth (and the state dir is lost).
  // A namespace's default route moving to another of its endpoints is taken off the old one
  // (unroute) before the new one adds it: the kernel holds one main-table default per family.
  phases: {
    netns: {},
    mark: { after: ["netns"] },
    port: { after: ["mark", "network.link"] },
    unroute: { after: ["port"] },
    inside: { after: ["unroute"] },
  },
  uses: ["network"],
  intent: endpointIntent,
  replaceOn: ["type", "host_if", "netns", "inner_if", "mac"],
  readScope: [{ ip: ["-d", "link", "show"] }, { ip: ["netns", "list"], ns: null }],

  desired(ctx) {
    const liveIps = new Map<string, string>();
    for (const r of ctx.live.values()) {
      if (r.kind !== "endpoint" || !r.owned) continue;
      if (r.spec.ip) liveIps.set(r.name, r.spec.ip.split("/")[0]!);
      if (r.spec.ip6) liveIps.set(lease6Key(r.name), r.spec.ip6.split("/")[0]!);
    }
    const networks = fragment(ctx.intent, NETWORKS);
    const endpoints = fragment(ctx.intent, ENDPOINTS);
    const { ips, ips6, diagnostics } = assignAddresses(networks, endpoints, ctx.leases, liveIps);
    const nets = new Map(networks.map((n) => [n.name, n]));
    const resources: Resource[] = [];
    for (const e of endpoints) {
      if (e.mode === "host") continue;
      if (e.mode === "none") {
        resources.push(noneResource(e));
        continue;
      }
      const n = nets.get(e.network);
      const ip = ips.get(e.name);
      if (!n || ip === undefined) continue;
      const ip6 = ips6.get(e.name);
      // Both IPv6 keys only when the network is dual-stack: a v4-only endpoint's spec is unchanged.
      // Only the namespace's routed endpoint has default routes (the kernel takes one per table and family).
      const routed = e.default !== false;
      const v6 = n.v6 && ip6 !== undefined ? { ip6: formatIfAddr6(ip6, n.v6.subnet.prefix), gateway6: routed ? formatIp6(n.v6.gateway) : "" } : undefined;
      if (n.v6 && !v6) continue;
      const veth = e.type === "veth";
      const spec: Record<string, string> = {
        type: e.type,
        host_if: endpointIfname(e),
        network: n.name,
        bridge: n.bridge,
        ...(veth ? { netns: e.netns! } : {}),
        // eth0 is every single-network endpoint's: the key shows only for a namespace's second and later interfaces.
        ...(veth && e.innerIf && e.innerIf !== INNER_IFNAME ? { inner_if: e.innerIf } : {}),
        ip: `${formatIp4(ip)}/${n.subnet.prefix}`,
        // `brd +`: applications ask the interface for its broadcast address (LAN discovery); the kernel keeps none unless told.
        ...(veth ? { broadcast: formatIp4(broadcastOf(n.subnet)) } : {}),
        ...(veth ? { gateway: routed ? formatIp4(n.gateway) : "" } : {}),
        ...(v6 ? { ip6: v6.ip6, ...(e.type === "veth" ? { gateway6: v6.gateway6 } : {}) } : {}),
        mtu: String(n.mtu),
        ...(e.mac ? { mac: e.mac.toLowerCase() } : {}),
        state: "up",
      };
      resources.push({
        kind: "endpoint",
        name: e.name,
        id: `endpoint:${e.name}`,
        keys: [`link:${spec.host_if}`],
        spec,
        deps: [`network:${n.name}`],
        owned: true,
        source: e.source,
        fieldSources: {
          ...e.fieldSources,
          host_if: e.fieldSources.name ?? e.source,
          ip: e.fieldSources.ip ?? e.source,
          broadcast: n.fieldSources.subnet ?? n.source,
          bridge: n.fieldSources.bridge ?? n.source,
          mtu: n.fieldSources.mtu ?? n.source,
          gateway: e.fieldSources.default ?? n.fieldSources.gateway ?? n.fieldSources.subnet ?? n.source,
          ...(v6 ? { ip6: e.fieldSources.ip6 ?? e.source, gateway6: n.fieldSources.gateway6 ?? n.source } : {}),
        },
      });
    }
    return { resources, diagnostics };
  },

  /**
   * A veth endpoint into a namespace that already exists (a job's, a container's) gets its
   * interface and, when it is the namespace's routed one, its default route: a namespace that
   * has either already (not bolt's) is refused at plan time (the kernel would say "File exists"
   * mid-apply). A none-mode endpoint in an existing namespace must find nothing but lo there.
   */
  async prepare(changes, io) {
    return { diagnostics: await neighbourTableWarning(changes, io) };
  },

  async conflicts(desired, io) {
    const plugged = desired.filter((d) => d.spec.netns && (d.spec.type === "veth" || d.spec.type === "none"));
    if (!plugged.length) return [];
    const [nsList, links] = await Promise.all([io.ipJson<{ name: string }[]>(["netns", "list"], null), io.ipJson<IpLink[]>(["-d", "link", "show"])]);
    const existing = new Set(nsList.map((n) => n.name));
    const tags = links.map((l) => decodeAlias(l.ifalias)).filter((t) => t?.ep);
    const live = new Set(tags.map((t) => t!.ep));
    // Interfaces inside that bolt's own endpoints hold (renumbered ones are replaced in the same apply).
    const ours = new Set(tags.map((t) => `${t!.ns}/${t!.if ?? INNER_IFNAME}`));
    const out: Diagnostic[] = [];
    await Promise.all(
      plugged
        .filter((d) => existing.has(d.spec.netns!) && !live.has(d.name))
        .map(async (d) => {
          const [inner = [], all = []] = (await io.ipJsonBatch(NS_PROBE, d.spec.netns!)) as [IpLink[], IpRoute[]];
          const theirs = inner.filter((l) => !ours.has(`${d.spec.netns}/${l.ifname}`));
          const what = d.spec.type === "none" ? noneConflict(d, inner) : vethConflict(d, theirs, all);
          if (what)
            out.push({
              severity: "error",
              message: `endpoint "${d.name}": namespace "${d.spec.netns}" already has ${what} that bolt did not make; the endpoint would plug in its own`,
              source: d.fieldSources?.netns ?? d.source,
              hint:
                d.spec.type === "none"
                  ? "give the endpoint its own namespace (netns = …)"
                  : "give the endpoint its own namespace (netns = …), or remove that interface or route",
            });
        }),
    );
    return out;
  },

  async read(io, ctx) {
    // Verify of a few endpoints among thousands: their host-side links only (at 3000 links the
    // full `ip -d link show` takes ~40 ms and 3 MB of JSON; one `link show dev` line, ~1 ms).
    const mine = ctx.only?.filter((r) => r.kind === "endpoint");
    const scoped = mine?.every((r) => r.spec.type !== "none" && r.spec.host_if) ? mine : undefined;
    const links = scoped ? await linksNamed(io, scoped) : await io.ipJson<IpLink[]>(["-d", "link", "show"]);
    const resources = parseEndpoints(links);
    resources.push(...(await orphans(io, ctx, resources, scoped && new Set(scoped.flatMap((r) => (r.spec.netns ? [r.spec.netns] : []))))));
    if (ctx.deep) {
      const wanted = resources.filter((r) => ctx.deep === true || (ctx.deep as Set<string>).has(r.id));
      if (wanted.length) {
        const names = new Set((await io.ipJson<{ name: string }[]>(["netns", "list"], null)).map((n) => n.name));
        await Promise.all(wanted.map((r) => readInside(io, r, names.has(r.spec.netns ?? ""))));
      }
    }
    // Foreign links are reported by the network reconciler (same `ip link` read).
    return { resources, foreign: new Map() };
  },

  render(change, ctx) {
    const { before, after } = change;
    if ((after ?? before)!.spec.type === "none") return noneOps(change, ctx);
    if (change.action === "create") return createOps(after!, ctx);
    if (change.action === "delete") return deleteOps(before!, ctx);
    return updateOps(before!, after!, change.changed, ctx.target);
  },

  impact: connectivityImpact,

  readBack(change) {
    const ns = change.after?.spec.netns;
    return change.action !== "delete" && change.after?.spec.type === "veth" && ns ? [{ ns, lines: INSIDE_READ }] : [];
  },

  commit(change, store, target) {
    if ((change.after ?? change.before)?.spec.type === "none") return;
    if (change.action === "delete") {
      store.releaseLease(target, change.name);
      store.releaseLease(target, lease6Key(change.name));
      return;
    }
    const s = change.after!.spec;
    store.setLease(target, s.network!, change.name, s.ip!.split("/")[0]!);
    if (s.ip6) store.setLease(target, s.network!, lease6Key(change.name), s.ip6.split("/")[0]!);
    else store.releaseLease(target, lease6Key(change.name));
  },
};

const line = (ns: Ns, ...args: string[]): OpLine => ({ tool: "ip", ns, args });

function aliasOf(r: Resource, nsCreated: boolean): string {
  const s = r.spec;
  return encodeAlias({
    ep: r.name,
    net: s.network,
    ns: s.netns,
    nsc: nsCreated ? "1" : undefined,
    if: s.inner_if,
    ip: s.ip,
    brd: s.broadcast,
    gw: s.gateway,
    ip6: s.ip6,
    gw6: s.gateway6,
    mac: s.mac,
  });
}

function nsCreatedOf(r: Resource): boolean {
  return r.data?.nsCreated === true;
}

/** The interface inside the endpoint's namespace. */
const innerOf = (s: Record<string, string | undefined>) => s.inner_if ?? INNER_IFNAME;

/** An IPv4 address with its broadcast address (`broadcast +`: the subnet's last address). */
const addr4 = (ns: Ns, verb: "add" | "del", ip: string, dev: string) =>
  line(ns, "address", verb, ip, ...(verb === "add" ? ["broadcast", "+"] : []), "dev", dev);

/** Host-side and inside lines that build the endpoint (no namespace creation). */
function buildLines(r: Resource, target: Ns, nsCreated: boolean, loUp: boolean): { host: OpLine[]; inside: OpLine[] } {
  const s = r.spec;
  const dev = s.host_if!;
  if (s.type === "tap") {
    return {
      host: [
        line(target, "tuntap", "add", "dev", dev, "mode", "tap"),
        line(target, "link", "set", "dev", dev, "addrgenmode", "none"),
        line(target, "link", "set", "dev", dev, "mtu", s.mtu!, ...(s.mac ? ["address", s.mac] : []), "alias", aliasOf(r, false), "master", s.bridge!, "up"),
      ],
      inside: [],
    };
  }
  const ns = s.netns!;
  const inner = innerOf(s);
  const peer = ["peer", "name", inner, "mtu", s.mtu!, ...(s.mac ? ["address", s.mac] : []), "netns", ns];
  return {
    host: [
      line(target, "link", "add", "name", dev, "mtu", s.mtu!, "type", "veth", ...peer),
      line(target, "link", "set", "dev", dev, "addrgenmode", "none"),
      line(target, "link", "set", "dev", dev, "alias", aliasOf(r, nsCreated), "master", s.bridge!, "up"),
    ],
    inside: [
      ...(loUp ? [line(ns, "link", "set", "dev", "lo", "up")] : []),
      line(ns, "link", "set", "dev", inner, "addrgenmode", "none"),
      s.broadcast ? addr4(ns, "add", s.ip!, inner) : line(ns, "address", "add", s.ip!, "dev", inner),
      line(ns, "link", "set", "dev", inner, "up"),
      ...(s.gateway ? [line(ns, "route", "add", "default", "via", s.gateway, "dev", inner, "proto", ROUTE_PROTO)] : []),
      ...inside6(s, ns),
    ],
  };
}

/**
 * The IPv6 address and default route inside: `nodad`, because bolt owns both ends of the veth
 * (DAD would keep the address `tentative`, unusable as a source, for a second or more). The
 * route names `::/0`: `ip -batch` takes no `-6`, and the gateway alone sets the family.
 */
function inside6(s: Record<string, string | undefined>, ns: Ns): OpLine[] {
  if (!s.ip6) return [];
  const inner = innerOf(s);
  return [
    line(ns, "address", "add", s.ip6, "dev", inner, "nodad"),
    ...(s.gateway6 ? [line(ns, "route", "add", "::/0", "via", s.gateway6, "dev", inner, "proto", ROUTE_PROTO)] : []),
  ];
}

/** The configured endpoints that live in namespace NS, in the order they are written. */
function membersOf(ctx: PlanContext, ns: string): EndpointIntent[] {
  return fragment(ctx.intent, ENDPOINTS).filter((e) => e.netns === ns);
}

/** Whether bolt made namespace NS: one of the live endpoints in it says so (its alias, or the mark on lo). */
function liveNsCreated(ctx: PlanContext, ns: string): boolean {
  for (const r of ctx.live.values()) if (r.kind === "endpoint" && r.owned && r.spec.netns === ns && nsCreatedOf(r)) return true;
  return false;
}

function createOps(r: Resource, ctx: PlanContext): RenderedOp[] {
  const ns = r.spec.netns;
  // A namespace that exists is the caller's (a job's, a container's) unless bolt's endpoints say
  // bolt made it: plug into it, never delete it. A missing one is made by the first endpoint written for it.
  const missing = r.spec.type === "veth" && !!ns && !ctx.netns.has(ns);
  const createNs = missing && membersOf(ctx, ns!)[0]?.name === r.name;
  const nsCreated = r.spec.type === "veth" && !!ns && (missing || liveNsCreated(ctx, ns));
  const { host, inside } = buildLines(r, ctx.target, nsCreated, createNs);
  const [add, ...restHost] = host;
  const ops: RenderedOp[] = [];
  if (createNs) {
    ops.push({ ...line(null, "netns", "add", ns!), phase: "netns", undo: [line(null, "netns", "del", ns!)] });
    ops.push({ ...markLine(r, ctx.target), phase: "mark", undo: [] });
  }
  // Deleting the host link removes its peer and everything configured on it.
  ops.push({ ...add!, phase: "port", undo: [line(ctx.target, "link", "del", "dev", r.spec.host_if!)] });
  for (const l of restHost) ops.push({ ...l, phase: "port", undo: [] });
  for (const l of inside) ops.push({ ...l, phase: "inside", undo: [] });
  return ops;
}

/**
 * The namespace bolt made goes with the last of its endpoints: when no configured endpoint
 * names it any more, the first (by name) of the live endpoints in it deletes it, once.
 */
function deletesNs(r: Resource, ctx: PlanContext): boolean {
  const ns = r.spec.netns;
  if (!ns || !nsCreatedOf(r) || membersOf(ctx, ns).length) return false;
  const inNs = [...ctx.live.values()].filter((x) => x.kind === "endpoint" && x.owned && x.spec.netns === ns).map((x) => x.name);
  return inNs.sort()[0] === r.name || !inNs.includes(r.name);
}

function deleteOps(r: Resource, ctx: PlanContext): RenderedOp[] {
  const target = ctx.target;
  const nsGoes = deletesNs(r, ctx);
  const { host, inside } = buildLines(r, target, nsCreatedOf(r), nsGoes);
  // An orphan (its namespace is all that is left) has no host link to delete.
  const ops: RenderedOp[] = r.spec.host_if ? [{ ...line(target, "link", "del", "dev", r.spec.host_if), phase: "port", undo: [...host, ...inside] }] : [];
  if (nsGoes)
    ops.push({ ...line(null, "netns", "del", r.spec.netns!), phase: "netns", undo: [line(null, "netns", "add", r.spec.netns!), markLine(r, target)] });
  return ops;
}

function updateOps(before: Resource, after: Resource, changed: string[], target: Ns): RenderedOp[] {
  const dev = after.spec.host_if!;
  const ns = after.spec.netns ?? null;
  const b = before.spec;
  const a = after.spec;
  const inner = innerOf(a);
  const nsCreated = nsCreatedOf(before);
  const ops: RenderedOp[] = [];
  const op = (phase: "port" | "unroute" | "inside", fwd: OpLine, undo: OpLine[]) => ops.push({ ...fwd, phase, undo });
  // A port whose bridge was deleted has no master: its undo is `nomaster` (an empty name is no token).
  if (changed.includes("bridge"))
    op("port", line(target, "link", "set", "dev", dev, "master", a.bridge!), [
      b.bridge ? line(target, "link", "set", "dev", dev, "master", b.bridge) : line(target, "link", "set", "dev", dev, "nomaster"),
    ]);
  if (changed.includes("mtu")) {
    op("port", line(target, "link", "set", "dev", dev, "mtu", a.mtu!), [line(target, "link", "set", "dev", dev, "mtu", b.mtu!)]);
    if (a.type === "veth") op("inside", line(ns, "link", "set", "dev", inner, "mtu", a.mtu!), [line(ns, "link", "set", "dev", inner, "mtu", b.mtu!)]);
  }
  if (changed.includes("state"))
    op("port", line(target, "link", "set", "dev", dev, a.state === "up" ? "up" : "down"), [
      line(target, "link", "set", "dev", dev, b.state === "up" ? "up" : "down"),
    ]);
  if (a.type === "veth" && ["ip", "broadcast", "gateway"].some((f) => changed.includes(f))) {
    const route = (gw: string) => line(ns, "route", "replace", "default", "via", gw, "dev", inner, "proto", ROUTE_PROTO);
    const add = (s: Record<string, string | undefined>, ip: string) =>
      s.broadcast ? addr4(ns, "add", ip, inner) : line(ns, "address", "add", ip, "dev", inner);
    // The kernel changes an address's broadcast only by deleting and adding it (a replace keeps the old one).
    const ipChanged = changed.includes("ip") || changed.includes("broadcast");
    // The old address goes first: with promote_secondaries=0 (the default in a new namespace),
    // deleting a primary address also deletes a new one added in the same subnet. Removing it
    // flushes the default route through it: its undo restores both.
    const oldIps = ipChanged && b.ip ? b.ip.split(", ") : [];
    for (const old of oldIps) op("inside", line(ns, "address", "del", old, "dev", inner), [add(b, old), ...(b.gateway ? [route(b.gateway)] : [])]);
    if (ipChanged && a.ip) op("inside", add(a, a.ip), [line(ns, "address", "del", a.ip, "dev", inner)]);
    const del = (gw: string) => line(ns, "route", "del", "default", "via", gw, "dev", inner, "proto", ROUTE_PROTO);
    // Now the namespace's routed endpoint: a default route it did not have is deleted by its undo.
    if (a.gateway) op("inside", route(a.gateway), oldIps.length ? [] : b.gateway ? [route(b.gateway)] : [del(a.gateway)]);
    // No longer the routed endpoint (another took `default = true`): its default route goes first.
    else if (b.gateway && !oldIps.length) op("unroute", del(b.gateway), [route(b.gateway)]);
  }
  if (a.type === "veth" && (changed.includes("ip6") || changed.includes("gateway6"))) ops.push(...update6(b, a, changed, ns));
  if (["network", "ip", "broadcast", "gateway", "ip6", "gateway6"].some((f) => changed.includes(f))) {
    op("port", line(target, "link", "set", "dev", dev, "alias", aliasOf(after, nsCreated)), [
      line(target, "link", "set", "dev", dev, "alias", aliasOf(before, nsCreated)),
    ]);
  }
  return ops;
}

/** A changed IPv6 address or gateway inside (each family's address has its own default route). */
function update6(b: Record<string, string | undefined>, a: Record<string, string | undefined>, changed: string[], ns: Ns): RenderedOp[] {
  const ops: RenderedOp[] = [];
  const inner = innerOf(a);
  const op = (fwd: OpLine, undo: OpLine[]) => ops.push({ ...fwd, phase: "inside", undo });
  const route = (verb: string, gw: string) => line(ns, "route", verb, "::/0", "via", gw, "dev", inner, "proto", ROUTE_PROTO);
  const addr = (verb: string, ip: string) => line(ns, "address", verb, ip, "dev", inner, ...(verb === "add" ? ["nodad"] : []));
  if (changed.includes("ip6")) {
    // Deleting the address flushes the default route through it: its undo restores both.
    if (b.ip6) op(addr("del", b.ip6), [addr("add", b.ip6), ...(b.gateway6 ? [route("replace", b.gateway6)] : [])]);
    if (a.ip6) op(addr("add", a.ip6), [addr("del", a.ip6)]);
  }
  // IPv6 keeps a default route when its gateway's address goes (unlike IPv4): a new one is deleted by its undo.
  if (a.gateway6) op(route("replace", a.gateway6), !b.gateway6 ? [route("del", a.gateway6)] : changed.includes("ip6") ? [] : [route("replace", b.gateway6)]);
  else if (b.gateway6 && !changed.includes("ip6")) op(route("del", b.gateway6), [route("replace", b.gateway6)]);
  return ops;
}

/** What bolt asks an existing namespace (its mark on lo, its interfaces, default routes): one process, shared by read and conflicts. */
const NS_PROBE = ["link show", "route show table all default"];

/** What in an existing namespace a veth endpoint would collide with: its interface name, or (when it routes) a default route bolt did not add. */
function vethConflict(d: Resource, inner: IpLink[], routes: IpRoute[]): string | undefined {
  const ifname = innerOf(d.spec);
  if (inner.some((l) => l.ifname === ifname)) return `an ${ifname}`;
  if (!d.spec.gateway) return undefined;
  // Main-table defaults of the families the endpoint brings (another table's default is policy routing's, not a clash).
  const defaults = routes.filter((rt) => !rt.table && rt.protocol !== ROUTE_PROTO && (!rt.gateway?.includes(":") || !!d.spec.ip6));
  const first = defaults[0];
  return first ? `a default route (${first.gateway ? `via ${first.gateway}` : `dev ${first.dev ?? "?"}`})` : undefined;
}

/** A none-mode namespace that exists may hold lo and nothing else. */
function noneConflict(d: Resource, inner: IpLink[]): string | undefined {
  const mark = decodeAlias(inner.find((l) => l.ifname === "lo")?.ifalias);
  if (mark?.ep && mark.ep !== d.name) return `endpoint "${mark.ep}"'s mark`;
  const others = inner.filter((l) => l.ifname !== "lo").map((l) => l.ifname);
  return others.length ? `interface(s) ${others.join(", ")}` : undefined;
}

/** The mark on a namespace bolt created for endpoint `r` of `target` (or plugged a none-mode endpoint into): its lo's alias. */
function markLine(r: Resource, target: Ns, nsCreated = true): OpLine {
  const mode = r.spec.type === "none" ? "none" : undefined;
  return line(r.spec.netns!, "link", "set", "dev", "lo", "alias", encodeAlias({ ep: r.name, nsc: nsCreated ? "1" : undefined, mode, t: target ?? undefined }));
}

/** `mode = "none"`: a namespace whose only interface is lo, up. */
function noneResource(e: EndpointIntent): Resource {
  return {
    kind: "endpoint",
    name: e.name,
    id: `endpoint:${e.name}`,
    keys: [],
    spec: { type: "none", netns: e.netns!, state: "up" },
    deps: [],
    owned: true,
    source: e.source,
    fieldSources: { ...e.fieldSources, type: e.fieldSources.mode ?? e.source, netns: e.fieldSources.netns ?? e.fieldSources.name ?? e.source },
  };
}

/**
 * A none-mode endpoint's ops: the namespace (when missing), its mark, lo up. On delete a
 * namespace bolt made goes; in the caller's own namespace only the mark is taken off (lo stays up).
 */
function noneOps(change: Change, ctx: PlanContext): RenderedOp[] {
  const r = (change.after ?? change.before)!;
  const ns = r.spec.netns!;
  const loUp = line(ns, "link", "set", "dev", "lo", "up");
  if (change.action === "create") {
    const createNs = !ctx.netns.has(ns);
    return [
      ...(createNs ? [{ ...line(null, "netns", "add", ns), phase: "netns", undo: [line(null, "netns", "del", ns)] }] : []),
      { ...markLine(r, ctx.target, createNs), phase: "mark", undo: createNs ? [] : [line(ns, "link", "set", "dev", "lo", "alias", "")] },
      { ...loUp, phase: "inside", undo: [] },
    ];
  }
  if (change.action === "delete") {
    if (nsCreatedOf(r)) return [{ ...line(null, "netns", "del", ns), phase: "netns", undo: [line(null, "netns", "add", ns), markLine(r, ctx.target), loUp] }];
    return [{ ...line(ns, "link", "set", "dev", "lo", "alias", ""), phase: "mark", undo: [markLine(r, ctx.target, false)] }];
  }
  return change.changed.includes("state") ? [{ ...loUp, phase: "inside", undo: [line(ns, "link", "set", "dev", "lo", "down")] }] : [];
}

/**
 * Namespaces bolt created whose endpoint's host link is gone (bolt killed between `netns add`
 * and the veth, then its state dir lost): found by the mark on their lo, read as endpoints with
 * nothing but the namespace, so a destroy deletes them and an apply replaces them. A none-mode
 * endpoint is read the same way: its namespace's marked lo is all it is. Only the namespaces the
 * config names are looked at (or, with an empty intent — destroy, show — every namespace no
 * endpoint accounts for): one read each.
 */
/** The host-side links of these endpoints (a name that is gone is simply not there: `-force`). */
async function linksNamed(io: LiveReader, eps: Resource[]): Promise<IpLink[]> {
  const names = [...new Set(eps.map((r) => r.spec.host_if!))];
  if (!names.length) return [];
  const answers = (await io.ipJsonBatchLoose(
    names.map((n) => `link show dev ${n}`),
    io.target,
    ["-d"],
  )) as IpLink[][];
  return answers.flat();
}

/** `within`: only these namespaces are looked into (verify of a few endpoints). */
async function orphans(io: LiveReader, ctx: ReadContext, live: Resource[], within?: Set<string>): Promise<Resource[]> {
  const referenced = new Set(live.map((r) => r.spec.netns).filter(Boolean));
  // A scoped read did not see the other endpoints' links: a namespace one of them shares (a
  // container on two networks) is theirs, as the full read would find it.
  if (within) {
    const inScope = new Set((ctx.only ?? []).map((r) => r.id));
    for (const e of fragment(ctx.intent, ENDPOINTS)) if (e.netns && !inScope.has(`endpoint:${e.name}`)) referenced.add(e.netns);
  }
  const everything = !within && (ctx.leftovers ?? Object.keys(ctx.intent.kinds).length === 0);
  const named = within ?? new Set(fragment(ctx.intent, ENDPOINTS).flatMap((e) => (e.netns ? [e.netns] : [])));
  if (!everything && !named.size) return [];
  const list = (await io.ipJson<{ name: string }[]>(["netns", "list"], null)).map((n) => n.name);
  const candidates = list.filter((n) => n !== io.target && !referenced.has(n) && (everything || named.has(n)));
  const found = await Promise.all(
    candidates.map(async (ns) => {
      const [inner = []] = (await io.ipJsonBatch(NS_PROBE, ns).catch(() => [[]])) as [IpLink[]];
      const lo = inner.find((l) => l.ifname === "lo");
      const tag = decodeAlias(lo?.ifalias);
      if (!tag?.ep || (tag.t ?? null) !== io.target) return undefined;
      const data = { nsCreated: tag.nsc === "1" };
      if (tag.mode === "none") {
        const spec = { type: "none", netns: ns, state: lo!.flags.includes("UP") ? "up" : "down" };
        return { kind: "endpoint", name: tag.ep, id: `endpoint:${tag.ep}`, keys: [], spec, data, deps: [], owned: true } satisfies Resource;
      }
      if (tag.nsc !== "1") return undefined;
      const spec: Record<string, string> = { type: "veth", host_if: "", network: "", bridge: "", netns: ns, ip: "", gateway: "", mtu: "", state: "orphan" };
      return { kind: "endpoint", name: tag.ep, id: `endpoint:${tag.ep}`, keys: [], spec, data, deps: [], owned: true } satisfies Resource;
    }),
  );
  return found.filter((r): r is NonNullable<typeof r> => !!r);
}
