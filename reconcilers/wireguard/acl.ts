import { contains, formatCidr4, parseCidr4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { contains6, formatCidr6, formatIp6, parseCidr6 } from "../../src/core/ipv6.js";
import type { Cidr6 } from "../../src/core/ipv6.js";
import type { AclAliases, AclTestIntent, MeshIntent, MeshNode } from "./intent.js";
import { INTERNET6, nodeAddress6 } from "./mesh6.js";

/**
 * Tailscale-shaped ACLs for the mesh: `src` and `dst` name "*", "tag:T", hostnames or CIDRs,
 * destinations with ":port", ":N-M", ":N,M" or ":*". First match wins; with any ACL present,
 * everything else arriving on the mesh interface is denied; with none, nothing is filtered
 * (Tailscale's default policy allows all). Protocols as Tailscale's client filters them: a
 * rule without `proto` covers TCP, UDP and ICMP; ports apply to TCP, UDP and SCTP only; an
 * ICMP echo is accepted by any accept rule whose source and destination cover it, whatever its
 * ports or protocols. The same model (`matches`) compiles to nft (nft/compile.ts aclRules)
 * and evaluates `[[acl_tests]]` and `bolt mesh test`.
 *
 * Both families, as in Tailscale: a node, tag, group, user or autogroup stands for its IPv4
 * and its IPv6 mesh address, so a rule decides the same for both; an IPv4 CIDR matches IPv4
 * packets only and an IPv6 CIDR IPv6 ones. "icmp" covers ICMPv6 too (an accept rule's ping
 * works over either family), and a rule without `proto` covers TCP, UDP, ICMP and ICMPv6.
 */
export type Ports = [number, number][] | "any";

export interface CompiledAcl {
  action: "accept" | "deny";
  /** IPv4 sources; with "any", `src6` is "any" too */
  src: Cidr4[] | "any";
  src6: Cidr6[] | "any";
  dst: { addrs: Cidr4[] | "any"; addrs6: Cidr6[] | "any"; ports: Ports }[];
  /** the IP protocols the rule covers (nft names), or every protocol (`proto = "all"`) */
  protos: string[] | "any";
}

/** A rule without `proto` (Tailscale's default). */
export const DEFAULT_PROTOS = ["tcp", "udp", "icmp", "ipv6-icmp"];
/** Both ICMPs: what "icmp" means in a rule, and what an accept rule lets through by address alone. */
export const ICMPS = ["icmp", "ipv6-icmp"];
/** Protocols with ports: the only ones a destination's port list restricts. */
export const PORTED = ["tcp", "udp", "sctp"];

/** Tailscale's protocol names (and IANA numbers) to the names nft matches. */
const PROTO_NAMES: Record<string, string> = {
  tcp: "tcp",
  "6": "tcp",
  udp: "udp",
  "17": "udp",
  icmp: "icmp",
  "1": "icmp",
  "ipv6-icmp": "ipv6-icmp",
  icmpv6: "ipv6-icmp",
  "58": "ipv6-icmp",
  sctp: "sctp",
  "132": "sctp",
  gre: "gre",
  "47": "gre",
  esp: "esp",
  "50": "esp",
  ah: "ah",
  "51": "ah",
  igmp: "igmp",
  "2": "igmp",
};

/** The nft name of a protocol as a rule or a test names it; undefined: not one bolt knows. */
export function protoName(p: string): string | undefined {
  return PROTO_NAMES[p.toLowerCase()];
}

function nodesOf(mesh: MeshIntent, self: MeshNode): MeshNode[] {
  return [self, ...mesh.peers];
}

/** What names resolve against: the mesh's nodes and the policy's groups and hosts aliases. */
export interface NameContext {
  nodes: MeshNode[];
  aliases?: AclAliases;
  /** the mesh's IPv6 prefix (MeshIntent.cidr6): nodes have IPv6 addresses */
  cidr6?: string;
}

const host32 = (n: MeshNode): Cidr4 => ({ network: n.address, prefix: 32 });

/** The users a name stands for: a user, or a group's members (groups may name groups). */
function usersOf(name: string, aliases: AclAliases | undefined, seen = new Set<string>()): string[] {
  if (!name.startsWith("group:")) return [name];
  if (seen.has(name)) return [];
  seen.add(name);
  return (aliases?.groups[name] ?? []).flatMap((m) => usersOf(m, aliases, seen));
}

/** A user's nodes: untagged nodes it owns ("alice@" also matches "alice@example.com"), as in Tailscale. */
function nodesOfUser(user: string, nodes: MeshNode[]): MeshNode[] {
  return nodes.filter((n) => !n.tags.length && n.user !== undefined && (n.user === user || (user.endsWith("@") && n.user.startsWith(user))));
}

/**
 * autogroup:internet: the public IPv4 space (what an exit node carries), i.e. everything but
 * this-network, RFC 1918, CGNAT (the mesh), loopback, link-local, multicast and reserved.
 */
const NOT_INTERNET = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/3"];
export const INTERNET: Cidr4[] = complement(NOT_INTERNET.map((c) => parseCidr4(c)!));

function complement(holes: Cidr4[]): Cidr4[] {
  const out: Cidr4[] = [];
  const walk = (c: Cidr4) => {
    const lo = c.network;
    const hi = lo + 2 ** (32 - c.prefix) - 1;
    const inside = holes.some((h) => h.prefix <= c.prefix && contains(h, lo));
    if (inside) return;
    const overlaps = holes.some((h) => h.prefix > c.prefix && h.network >= lo && h.network <= hi);
    if (!overlaps) return void out.push(c);
    const half = 2 ** (31 - c.prefix);
    walk({ network: lo, prefix: c.prefix + 1 });
    walk({ network: lo + half, prefix: c.prefix + 1 });
  };
  walk({ network: 0, prefix: 0 });
  return out;
}

export function resolveNames(name: string, ctx: NameContext | MeshNode[]): Cidr4[] | "any" {
  const { nodes, aliases } = Array.isArray(ctx) ? { nodes: ctx, aliases: undefined } : ctx;
  if (name === "*") return "any";
  if (name.startsWith("tag:")) return nodes.filter((n) => n.tags.includes(name.slice(4))).map(host32);
  if (name === "autogroup:member") return nodes.filter((n) => !n.tags.length).map(host32);
  if (name === "autogroup:tagged") return nodes.filter((n) => n.tags.length).map(host32);
  if (name === "autogroup:internet") return INTERNET;
  if (name.startsWith("group:") || name.includes("@")) return usersOf(name, aliases).flatMap((u) => nodesOfUser(u, nodes).map(host32));
  const alias = aliases?.hosts[name];
  if (alias !== undefined) name = alias;
  const host = nodes.find((n) => n.hostname === name);
  if (host) return [host32(host)];
  if (name.includes(":")) return [];
  const c = parseCidr4(name.includes("/") ? name : `${name}/32`);
  return c ? [{ network: c.network, prefix: c.prefix }] : [];
}

/** The IPv6 side of a name: the nodes' IPv6 mesh addresses, autogroup:internet's 2000::/3, or an IPv6 CIDR (bare or bracketed). */
export function resolveNames6(name: string, ctx: NameContext | MeshNode[]): Cidr6[] | "any" {
  const { nodes, aliases, cidr6 } = Array.isArray(ctx) ? { nodes: ctx, aliases: undefined, cidr6: undefined } : ctx;
  const host128 = (ns: MeshNode[]): Cidr6[] =>
    ns.flatMap((n) => {
      const a = nodeAddress6({ cidr6 }, n);
      return a === undefined ? [] : [{ network: a, prefix: 128 }];
    });
  if (name === "*") return "any";
  if (name.startsWith("tag:")) return host128(nodes.filter((n) => n.tags.includes(name.slice(4))));
  if (name === "autogroup:member") return host128(nodes.filter((n) => !n.tags.length));
  if (name === "autogroup:tagged") return host128(nodes.filter((n) => n.tags.length));
  if (name === "autogroup:internet") return INTERNET6;
  if (name.startsWith("group:") || name.includes("@")) return usersOf(name, aliases).flatMap((u) => host128(nodesOfUser(u, nodes)));
  const alias = aliases?.hosts[name];
  if (alias !== undefined) name = alias;
  const host = nodes.find((n) => n.hostname === name);
  if (host) return host128([host]);
  if (!name.includes(":")) return [];
  const c = parseCidr6(name.replace(/^\[(.*)\]$/, "$1"));
  return c ? [{ network: c.network, prefix: c.prefix }] : [];
}

export function parsePorts(p: string): Ports {
  if (p === "*") return "any";
  return p.split(",").map((part) => {
    const [lo, hi] = part.split("-").map(Number);
    return [lo!, hi ?? lo!] as [number, number];
  });
}

function splitDst(d: string): [string, string] {
  const i = d.lastIndexOf(":");
  // "[fd7a:115c:a1e0::1]:22": the brackets only delimit the address.
  return [d.slice(0, i).replace(/^\[(.*)\]$/, "$1"), d.slice(i + 1)];
}

/**
 * The mesh's ACLs as address/port/protocol rules. A destination `autogroup:self` means "the
 * source's own devices": the rule is expanded per user, each user's nodes among the sources
 * reaching that user's nodes (Tailscale's meaning), in place, so first-match order holds.
 */
export function compileAcls(mesh: MeshIntent, self: MeshNode): CompiledAcl[] {
  const nodes = nodesOf(mesh, self);
  const ctx: NameContext = { nodes, aliases: mesh.aliases, cidr6: mesh.cidr6 };
  const v6Of = (ns: MeshNode[]): Cidr6[] =>
    ns.flatMap((n) => {
      const a = nodeAddress6(mesh, n);
      return a === undefined ? [] : [{ network: a, prefix: 128 }];
    });
  return mesh.acls.flatMap((a) => {
    const srcs = a.src.map((s) => resolveNames(s, ctx));
    const any = srcs.includes("any");
    const src: Cidr4[] | "any" = any ? "any" : (srcs as Cidr4[][]).flat();
    const src6: Cidr6[] | "any" = any ? "any" : a.src.flatMap((s) => resolveNames6(s, ctx) as Cidr6[]);
    const named = a.proto === undefined ? undefined : (protoName(a.proto) ?? a.proto);
    const protos: CompiledAcl["protos"] = a.proto === "all" || a.proto === "*" ? "any" : named === "icmp" ? [...ICMPS] : named ? [named] : [...DEFAULT_PROTOS];
    const dsts = a.dst.map((d) => splitDst(d));
    const plain = dsts
      .filter(([name]) => name !== "autogroup:self")
      .map(([name, port]) => ({ addrs: resolveNames(name, ctx), addrs6: resolveNames6(name, ctx), ports: parsePorts(port) }));
    const selfPorts = dsts.filter(([name]) => name === "autogroup:self").map(([, port]) => parsePorts(port));
    const out: CompiledAcl[] = [];
    if (selfPorts.length) {
      const users = [...new Set(nodes.filter((n) => !n.tags.length && n.user).map((n) => n.user!))].sort();
      for (const u of users) {
        const mine = nodesOfUser(u, nodes);
        // A source node counts with both its addresses when either is among the sources.
        const fromNodes =
          src === "any"
            ? mine
            : mine.filter((n) => src.some((c) => contains(c, n.address)) || v6Of([n]).some((h) => (src6 as Cidr6[]).some((c) => contains6(c, h.network))));
        if (fromNodes.length)
          out.push({
            action: a.action,
            src: fromNodes.map(host32),
            src6: v6Of(fromNodes),
            dst: selfPorts.map((ports) => ({ addrs: mine.map(host32), addrs6: v6Of(mine), ports })),
            protos,
          });
      }
    }
    if (plain.length) out.push({ action: a.action, src, src6, dst: plain, protos });
    return out;
  });
}

export interface Packet {
  /** IPv4 (number) or IPv6 (bigint) addresses; both of one family */
  src: number | bigint;
  dst: number | bigint;
  proto: string;
  /** destination port (tcp, udp, sctp) */
  port?: number;
}

/** Whether one rule decides this packet (the model nft/compile.ts aclRules compiles). */
export function matches(a: CompiledAcl, p: Packet): boolean {
  if (!inAddrs(a.src, a.src6, p.src)) return false;
  const dsts = a.dst.filter((d) => inAddrs(d.addrs, d.addrs6, p.dst));
  if (!dsts.length) return false;
  // Tailscale lets a node ping whatever some rule lets it reach, on any port or protocol.
  if (a.action === "accept" && ICMPS.includes(p.proto)) return true;
  if (a.protos !== "any" && !a.protos.includes(p.proto)) return false;
  if (!PORTED.includes(p.proto)) return true;
  return dsts.some((d) => inPorts(d.ports, p.port));
}

function inAddrs(addrs: Cidr4[] | "any", addrs6: Cidr6[] | "any", ip: number | bigint): boolean {
  if (typeof ip === "bigint") return addrs6 === "any" || addrs6.some((c) => contains6(c, ip));
  return addrs === "any" || addrs.some((c) => contains(c, ip));
}

function inPorts(ports: Ports, port: number | undefined): boolean {
  return ports === "any" || (port !== undefined && ports.some(([lo, hi]) => port >= lo && port <= hi));
}

/** The verdict the compiled rules give a packet: the first rule that matches; none: deny; no rules at all: accept (no filter). */
export function evaluate(acls: CompiledAcl[], src: number | bigint, dst: number | bigint, port: number | undefined, proto: string): "accept" | "deny" {
  if (!acls.length) return "accept";
  const named = protoName(proto) ?? proto;
  // A test's "icmp" between IPv6 addresses is ICMPv6.
  const p: Packet = { src, dst, proto: typeof src === "bigint" && named === "icmp" ? "ipv6-icmp" : named, port };
  return acls.find((a) => matches(a, p))?.action ?? "deny";
}

export interface AclTestFailure {
  test: AclTestIntent;
  target: string;
  expected: "accept" | "deny";
  got: "accept" | "deny";
}

/** Tailscale-style policy tests: every source address of `src` must get the expected verdict. */
export function runAclTests(mesh: MeshIntent, self: MeshNode): AclTestFailure[] {
  const nodes = nodesOf(mesh, self);
  const ctx: NameContext = { nodes, aliases: mesh.aliases, cidr6: mesh.cidr6 };
  const acls = compileAcls(mesh, self);
  const failures: AclTestFailure[] = [];
  // Each name's addresses of both families ("*": one address of each); a pair is tested within one family.
  const ips = (name: string): (number | bigint)[] => {
    const v4 = resolveNames(name, ctx);
    const v6 = resolveNames6(name, ctx);
    return [...(v4 === "any" ? [0] : v4.map((c) => c.network)), ...(v6 === "any" ? [0n] : v6.map((c) => c.network))];
  };
  for (const t of mesh.aclTests) {
    const srcIps = ips(t.src);
    for (const [expected, list] of [
      ["accept", t.accept],
      ["deny", t.deny],
    ] as const) {
      for (const target of list) {
        const [name, port] = splitDst(target);
        const dstIps = ips(name);
        // One port (intent.ts refuses anything else); ICMP has none.
        const p = PORTED.includes(protoName(t.proto) ?? t.proto) ? Number(port) : undefined;
        // One failure per target, whichever family (or address) gives it.
        let failed = false;
        for (const s of srcIps)
          for (const d of dstIps) {
            if (failed || typeof s !== typeof d) continue;
            const got = evaluate(acls, s, d, p, t.proto);
            if (got !== expected) {
              failures.push({ test: t, target, expected, got });
              failed = true;
            }
          }
      }
    }
  }
  return failures;
}

/** nft text for one address list (anonymous set when several). */
export function addrSet(addrs: Cidr4[]): string {
  const txt = [...new Set(addrs.map((c) => (c.prefix === 32 ? formatCidr4(c).replace(/\/32$/, "") : formatCidr4(c))))];
  return txt.length === 1 ? txt[0]! : `{ ${txt.join(", ")} }`;
}

/** nft text for one IPv6 address list (a /128 as its address). */
export function addrSet6(addrs: Cidr6[]): string {
  const txt = [...new Set(addrs.map((c) => (c.prefix === 128 ? formatIp6(c.network) : formatCidr6(c))))];
  return txt.length === 1 ? txt[0]! : `{ ${txt.join(", ")} }`;
}
