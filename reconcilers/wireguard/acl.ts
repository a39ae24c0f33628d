import { contains, formatCidr4, parseCidr4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import type { AclTestIntent, MeshIntent, MeshNode } from "./intent.js";

/**
 * Tailscale-shaped ACLs for the mesh: `src` and `dst` name "*", "tag:T", hostnames or CIDRs,
 * destinations with ":port", ":N-M", ":N,M" or ":*". First match wins; with any ACL present,
 * everything else arriving on the mesh interface is denied; with none, nothing is filtered
 * (Tailscale's default policy allows all). Protocols as Tailscale's client filters them: a
 * rule without `proto` covers TCP, UDP and ICMP; ports apply to TCP, UDP and SCTP only; an
 * ICMP echo is accepted by any accept rule whose source and destination cover it, whatever its
 * ports or protocols. The same model (`matches`) compiles to nft (nft/compile.ts aclRules)
 * and evaluates `[[acl_tests]]` and `bolt mesh test`.
 */
export type Ports = [number, number][] | "any";

export interface CompiledAcl {
  action: "accept" | "deny";
  src: Cidr4[] | "any";
  dst: { addrs: Cidr4[] | "any"; ports: Ports }[];
  /** the IP protocols the rule covers (nft names), or every protocol (`proto = "all"`) */
  protos: string[] | "any";
}

/** A rule without `proto` (Tailscale's default). */
export const DEFAULT_PROTOS = ["tcp", "udp", "icmp"];
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

export function resolveNames(name: string, nodes: MeshNode[]): Cidr4[] | "any" {
  if (name === "*") return "any";
  if (name.startsWith("tag:")) return nodes.filter((n) => n.tags.includes(name.slice(4))).map((n) => ({ network: n.address, prefix: 32 }));
  const host = nodes.find((n) => n.hostname === name);
  if (host) return [{ network: host.address, prefix: 32 }];
  const c = parseCidr4(name.includes("/") ? name : `${name}/32`);
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
  return [d.slice(0, i), d.slice(i + 1)];
}

export function compileAcls(mesh: MeshIntent, self: MeshNode): CompiledAcl[] {
  const nodes = nodesOf(mesh, self);
  return mesh.acls.map((a) => {
    const srcs = a.src.map((s) => resolveNames(s, nodes));
    return {
      action: a.action,
      src: srcs.includes("any") ? "any" : (srcs as Cidr4[][]).flat(),
      dst: a.dst.map((d) => {
        const [name, port] = splitDst(d);
        return { addrs: resolveNames(name, nodes), ports: parsePorts(port) };
      }),
      // "all" (schema) is no protocol match at all.
      protos: a.proto === "all" || a.proto === "*" ? "any" : a.proto ? [protoName(a.proto) ?? a.proto] : DEFAULT_PROTOS,
    };
  });
}

export interface Packet {
  src: number;
  dst: number;
  proto: string;
  /** destination port (tcp, udp, sctp) */
  port?: number;
}

/** Whether one rule decides this packet (the model nft/compile.ts aclRules compiles). */
export function matches(a: CompiledAcl, p: Packet): boolean {
  if (!inAddrs(a.src, p.src)) return false;
  const dsts = a.dst.filter((d) => inAddrs(d.addrs, p.dst));
  if (!dsts.length) return false;
  // Tailscale lets a node ping whatever some rule lets it reach, on any port or protocol.
  if (a.action === "accept" && p.proto === "icmp") return true;
  if (a.protos !== "any" && !a.protos.includes(p.proto)) return false;
  if (!PORTED.includes(p.proto)) return true;
  return dsts.some((d) => inPorts(d.ports, p.port));
}

function inAddrs(addrs: Cidr4[] | "any", ip: number): boolean {
  return addrs === "any" || addrs.some((c) => contains(c, ip));
}

function inPorts(ports: Ports, port: number | undefined): boolean {
  return ports === "any" || (port !== undefined && ports.some(([lo, hi]) => port >= lo && port <= hi));
}

/** The verdict the compiled rules give a packet: the first rule that matches; none: deny; no rules at all: accept (no filter). */
export function evaluate(acls: CompiledAcl[], src: number, dst: number, port: number | undefined, proto: string): "accept" | "deny" {
  if (!acls.length) return "accept";
  const p: Packet = { src, dst, proto: protoName(proto) ?? proto, port };
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
  const acls = compileAcls(mesh, self);
  const failures: AclTestFailure[] = [];
  for (const t of mesh.aclTests) {
    const srcs = resolveNames(t.src, nodes);
    const srcIps = srcs === "any" ? [0] : srcs.map((c) => c.network);
    for (const [expected, list] of [
      ["accept", t.accept],
      ["deny", t.deny],
    ] as const) {
      for (const target of list) {
        const [name, port] = splitDst(target);
        const dsts = resolveNames(name, nodes);
        const dstIps = dsts === "any" ? [0] : dsts.map((c) => c.network);
        // One port (intent.ts refuses anything else); ICMP has none.
        const p = PORTED.includes(protoName(t.proto) ?? t.proto) ? Number(port) : undefined;
        for (const s of srcIps)
          for (const d of dstIps) {
            const got = evaluate(acls, s, d, p, t.proto);
            if (got !== expected) failures.push({ test: t, target, expected, got });
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
