import { formatIp4 } from "../../src/core/ipv4.js";
import { formatIfAddr6, formatIp6 } from "../../src/core/ipv6.js";
import { decodeAlias, encodeAlias } from "../../src/core/ownership.js";
import { INNER_IFNAME, ROUTE_PROTO } from "../../src/core/conventions.js";
import { fragment } from "../../src/core/intent.js";
import type { OpLine, PlanContext, ReadContext, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import type { IpLink, IpRoute, LiveReader } from "../../src/core/live-reader.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { Ns } from "../../src/exec/runner.js";
import { connectivityImpact } from "../network/index.js";
import { NETWORKS } from "../network/intent.js";
import { ENDPOINTS, endpointIfname, endpointIntent } from "./intent.js";
import { assignAddresses, lease6Key } from "./ipam.js";
import { INSIDE_READ, parseEndpoints, readInside } from "./read.js";

/**
 * `[[endpoints]]`: a veth pair whose far end is `eth0` in the endpoint's namespace (created
 * when missing, deleted on destroy only if bolt created it), with an address and a default
 * route via the gateway; or, with `tap = true`, a tap device on the bridge for a VM.
 */
export const endpointReconciler: Reconciler = {
  kind: "endpoint",
  // The namespace exists before its veth end is moved into it; the host end joins a bridge.
  // A namespace bolt creates is marked (its lo's alias) before anything goes into it, so it is
  // recognised from the kernel alone even if bolt dies before the veth (and the state dir is lost).
  phases: { netns: {}, mark: { after: ["netns"] }, port: { after: ["mark", "network.link"] }, inside: { after: ["port"] } },
  uses: ["network"],
  intent: endpointIntent,
  replaceOn: ["type", "host_if", "netns", "mac"],
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
      const n = nets.get(e.network);
      const ip = ips.get(e.name);
      if (!n || ip === undefined) continue;
      const ip6 = ips6.get(e.name);
      // Both IPv6 keys only when the network is dual-stack: a v4-only endpoint's spec is unchanged.
      const v6 = n.v6 && ip6 !== undefined ? { ip6: formatIfAddr6(ip6, n.v6.subnet.prefix), gateway6: formatIp6(n.v6.gateway) } : undefined;
      if (n.v6 && !v6) continue;
      const spec: Record<string, string> = {
        type: e.type,
        host_if: endpointIfname(e),
        network: n.name,
        bridge: n.bridge,
        ...(e.type === "veth" ? { netns: e.netns! } : {}),
        ip: `${formatIp4(ip)}/${n.subnet.prefix}`,
        ...(e.type === "veth" ? { gateway: formatIp4(n.gateway) } : {}),
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
          bridge: n.fieldSources.bridge ?? n.source,
          mtu: n.fieldSources.mtu ?? n.source,
          gateway: n.fieldSources.gateway ?? n.fieldSources.subnet ?? n.source,
          ...(v6 ? { ip6: e.fieldSources.ip6 ?? e.source, gateway6: n.fieldSources.gateway6 ?? n.source } : {}),
        },
      });
    }
    return { resources, diagnostics };
  },

  /**
   * A veth endpoint into a namespace that already exists (a job's, a container's) gets its
   * `eth0` and default route: a namespace that has either already is refused at plan time
   * (the kernel would say "File exists" mid-apply).
   */
  async conflicts(desired, io) {
    const veths = desired.filter((d) => d.spec.type === "veth" && d.spec.netns);
    if (!veths.length) return [];
    const [nsList, links] = await Promise.all([io.ipJson<{ name: string }[]>(["netns", "list"], null), io.ipJson<IpLink[]>(["-d", "link", "show"])]);
    const existing = new Set(nsList.map((n) => n.name));
    const live = new Set(links.map((l) => decodeAlias(l.ifalias)?.ep).filter(Boolean));
    const out: Diagnostic[] = [];
    await Promise.all(
      veths
        .filter((d) => existing.has(d.spec.netns!) && !live.has(d.name))
        .map(async (d) => {
          const [inner = [], all = []] = (await io.ipJsonBatch(NS_PROBE, d.spec.netns!)) as [IpLink[], IpRoute[]];
          // Main-table defaults of the families the endpoint brings (another table's default is policy routing's, not a clash).
          const defaults = all.filter((rt) => !rt.table && (!rt.gateway?.includes(":") || !!d.spec.ip6));
          const what = inner.some((l) => l.ifname === INNER_IFNAME)
            ? `an ${INNER_IFNAME}`
            : defaults.length
              ? `a default route (${defaults[0]!.gateway ? `via ${defaults[0]!.gateway}` : `dev ${defaults[0]!.dev ?? "?"}`})`
              : undefined;
          if (what)
            out.push({
              severity: "error",
              message: `endpoint "${d.name}": namespace "${d.spec.netns}" already has ${what} that bolt did not make; the endpoint would plug in its own`,
              source: d.fieldSources?.netns ?? d.source,
              hint: "give the endpoint its own namespace (netns = …), or remove that interface or route",
            });
        }),
    );
    return out;
  },

  async read(io, ctx) {
    const links = await io.ipJson<IpLink[]>(["-d", "link", "show"]);
    const resources = parseEndpoints(links);
    resources.push(...(await orphans(io, ctx, resources)));
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
    if (change.action === "create") return createOps(after!, ctx, before);
    if (change.action === "delete") return deleteOps(before!, ctx.target);
    return updateOps(before!, after!, change.changed, ctx.target);
  },

  impact: connectivityImpact,

  readBack(change) {
    const ns = change.after?.spec.netns;
    return change.action !== "delete" && change.after?.spec.type === "veth" && ns ? [{ ns, lines: INSIDE_READ }] : [];
  },

  commit(change, store, target) {
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
    ip: s.ip,
    gw: s.gateway,
    ip6: s.ip6,
    gw6: s.gateway6,
    mac: s.mac,
  });
}

function nsCreatedOf(r: Resource): boolean {
  return r.data?.nsCreated === true;
}

/** Host-side and inside lines that build the endpoint (no namespace creation). */
function buildLines(r: Resource, target: Ns, nsCreated: boolean): { host: OpLine[]; inside: OpLine[] } {
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
  const peer = ["peer", "name", INNER_IFNAME, "mtu", s.mtu!, ...(s.mac ? ["address", s.mac] : []), "netns", ns];
  return {
    host: [
      line(target, "link", "add", "name", dev, "mtu", s.mtu!, "type", "veth", ...peer),
      line(target, "link", "set", "dev", dev, "addrgenmode", "none"),
      line(target, "link", "set", "dev", dev, "alias", aliasOf(r, nsCreated), "master", s.bridge!, "up"),
    ],
    inside: [
      ...(nsCreated ? [line(ns, "link", "set", "dev", "lo", "up")] : []),
      line(ns, "link", "set", "dev", INNER_IFNAME, "addrgenmode", "none"),
      line(ns, "address", "add", s.ip!, "dev", INNER_IFNAME),
      line(ns, "link", "set", "dev", INNER_IFNAME, "up"),
      line(ns, "route", "add", "default", "via", s.gateway!, "dev", INNER_IFNAME, "proto", ROUTE_PROTO),
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
  return [
    line(ns, "address", "add", s.ip6, "dev", INNER_IFNAME, "nodad"),
    ...(s.gateway6 ? [line(ns, "route", "add", "::/0", "via", s.gateway6, "dev", INNER_IFNAME, "proto", ROUTE_PROTO)] : []),
  ];
}

function createOps(r: Resource, ctx: PlanContext, replacing?: Resource): RenderedOp[] {
  const ns = r.spec.netns;
  // A namespace that exists is the caller's (a job's, a container's): plug into it, never delete it.
  // One bolt created and is deleting as part of a replace is created again.
  const recreated = !!replacing && nsCreatedOf(replacing) && replacing.spec.netns === ns;
  const createNs = r.spec.type === "veth" && !!ns && (!ctx.netns.has(ns) || recreated);
  const { host, inside } = buildLines(r, ctx.target, createNs);
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

function deleteOps(r: Resource, target: Ns): RenderedOp[] {
  const nsCreated = nsCreatedOf(r);
  const { host, inside } = buildLines(r, target, nsCreated);
  // An orphan (its namespace is all that is left) has no host link to delete.
  const ops: RenderedOp[] = r.spec.host_if ? [{ ...line(target, "link", "del", "dev", r.spec.host_if), phase: "port", undo: [...host, ...inside] }] : [];
  if (nsCreated && r.spec.netns)
    ops.push({ ...line(null, "netns", "del", r.spec.netns), phase: "netns", undo: [line(null, "netns", "add", r.spec.netns), markLine(r, target)] });
  return ops;
}

function updateOps(before: Resource, after: Resource, changed: string[], target: Ns): RenderedOp[] {
  const dev = after.spec.host_if!;
  const ns = after.spec.netns ?? null;
  const b = before.spec;
  const a = after.spec;
  const nsCreated = nsCreatedOf(before);
  const ops: RenderedOp[] = [];
  const op = (phase: "port" | "inside", fwd: OpLine, undo: OpLine[]) => ops.push({ ...fwd, phase, undo });
  // A port whose bridge was deleted has no master: its undo is `nomaster` (an empty name is no token).
  if (changed.includes("bridge"))
    op("port", line(target, "link", "set", "dev", dev, "master", a.bridge!), [
      b.bridge ? line(target, "link", "set", "dev", dev, "master", b.bridge) : line(target, "link", "set", "dev", dev, "nomaster"),
    ]);
  if (changed.includes("mtu")) {
    op("port", line(target, "link", "set", "dev", dev, "mtu", a.mtu!), [line(target, "link", "set", "dev", dev, "mtu", b.mtu!)]);
    if (a.type === "veth")
      op("inside", line(ns, "link", "set", "dev", INNER_IFNAME, "mtu", a.mtu!), [line(ns, "link", "set", "dev", INNER_IFNAME, "mtu", b.mtu!)]);
  }
  if (changed.includes("state"))
    op("port", line(target, "link", "set", "dev", dev, a.state === "up" ? "up" : "down"), [
      line(target, "link", "set", "dev", dev, b.state === "up" ? "up" : "down"),
    ]);
  if (a.type === "veth" && (changed.includes("ip") || changed.includes("gateway"))) {
    const route = (gw: string) => line(ns, "route", "replace", "default", "via", gw, "dev", INNER_IFNAME, "proto", ROUTE_PROTO);
    const ipChanged = changed.includes("ip");
    // The old address goes first: with promote_secondaries=0 (the default in a new namespace),
    // deleting a primary address also deletes a new one added in the same subnet. Removing it
    // flushes the default route through it: its undo restores both.
    const oldIps = ipChanged && b.ip ? b.ip.split(", ") : [];
    for (const old of oldIps)
      op("inside", line(ns, "address", "del", old, "dev", INNER_IFNAME), [
        line(ns, "address", "add", old, "dev", INNER_IFNAME),
        ...(b.gateway ? [route(b.gateway)] : []),
      ]);
    if (ipChanged && a.ip) op("inside", line(ns, "address", "add", a.ip, "dev", INNER_IFNAME), [line(ns, "address", "del", a.ip, "dev", INNER_IFNAME)]);
    if (a.gateway) op("inside", route(a.gateway), oldIps.length || !b.gateway ? [] : [route(b.gateway)]);
  }
  if (a.type === "veth" && (changed.includes("ip6") || changed.includes("gateway6"))) ops.push(...update6(b, a, changed, ns));
  if (["network", "ip", "gateway", "ip6", "gateway6"].some((f) => changed.includes(f))) {
    op("port", line(target, "link", "set", "dev", dev, "alias", aliasOf(after, nsCreated)), [
      line(target, "link", "set", "dev", dev, "alias", aliasOf(before, nsCreated)),
    ]);
  }
  return ops;
}

/** A changed IPv6 address or gateway inside (each family's address has its own default route). */
function update6(b: Record<string, string | undefined>, a: Record<string, string | undefined>, changed: string[], ns: Ns): RenderedOp[] {
  const ops: RenderedOp[] = [];
  const op = (fwd: OpLine, undo: OpLine[]) => ops.push({ ...fwd, phase: "inside", undo });
  const route = (verb: string, gw: string) => line(ns, "route", verb, "::/0", "via", gw, "dev", INNER_IFNAME, "proto", ROUTE_PROTO);
  const addr = (verb: string, ip: string) => line(ns, "address", verb, ip, "dev", INNER_IFNAME, ...(verb === "add" ? ["nodad"] : []));
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

/** What bolt asks an existing namespace (its mark on lo, an eth0, a default route): one process, shared by read and conflicts. */
const NS_PROBE = ["link show", "route show table all default"];

/** The mark on a namespace bolt created for endpoint `r` of `target`: its lo's alias. */
function markLine(r: Resource, target: Ns): OpLine {
  return line(r.spec.netns!, "link", "set", "dev", "lo", "alias", encodeAlias({ ep: r.name, nsc: "1", t: target ?? undefined }));
}

/**
 * Namespaces bolt created whose endpoint's host link is gone (bolt killed between `netns add`
 * and the veth, then its state dir lost): found by the mark on their lo, read as endpoints with
 * nothing but the namespace, so a destroy deletes them and an apply replaces them. Only the
 * namespaces the config names are looked at (or, with an empty intent — destroy, show — every
 * namespace no endpoint accounts for): one read each.
 */
async function orphans(io: LiveReader, ctx: ReadContext, live: Resource[]): Promise<Resource[]> {
  const referenced = new Set(live.map((r) => r.spec.netns).filter(Boolean));
  const everything = Object.keys(ctx.intent.kinds).length === 0;
  const named = new Set(fragment(ctx.intent, ENDPOINTS).flatMap((e) => (e.netns ? [e.netns] : [])));
  if (!everything && !named.size) return [];
  const list = (await io.ipJson<{ name: string }[]>(["netns", "list"], null)).map((n) => n.name);
  const candidates = list.filter((n) => n !== io.target && !referenced.has(n) && (everything || named.has(n)));
  const found = await Promise.all(
    candidates.map(async (ns) => {
      const [inner = []] = (await io.ipJsonBatch(NS_PROBE, ns).catch(() => [[]])) as [IpLink[]];
      const tag = decodeAlias(inner.find((l) => l.ifname === "lo")?.ifalias);
      if (!tag?.ep || tag.nsc !== "1" || (tag.t ?? null) !== io.target) return undefined;
      const spec: Record<string, string> = { type: "veth", host_if: "", network: "", bridge: "", netns: ns, ip: "", gateway: "", mtu: "", state: "orphan" };
      return { kind: "endpoint", name: tag.ep, id: `endpoint:${tag.ep}`, keys: [], spec, data: { nsCreated: true }, deps: [], owned: true } satisfies Resource;
    }),
  );
  return found.filter((r): r is NonNullable<typeof r> => !!r);
}
