import { contains, formatCidr4, parseCidr4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import type { AclTestIntent, MeshIntent, MeshNode } from "./intent.js";

/**
 * Tailscale-shaped ACLs for the mesh: `src` and `dst` name "*", "tag:T", hostnames or CIDRs,
 * destinations with ":port", ":N-M", ":N,M" or ":*". First match wins; with any ACL present,
 * everything else arriving on the mesh interface is denied. The same model compiles to nft and
 * evaluates `[[acl_tests]]` offline.
 */
export type Ports = [number, number][] | "any";

export interface CompiledAcl {
  action: "accept" | "deny";
  src: Cidr4[] | "any";
  dst: { addrs: Cidr4[] | "any"; ports: Ports }[];
  proto?: string;
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
      proto: a.proto === "all" ? undefined : a.proto,
    };
  });
}

function inAddrs(addrs: Cidr4[] | "any", ip: number): boolean {
  return addrs === "any" || addrs.some((c) => contains(c, ip));
}

function inPorts(ports: Ports, port: number | undefined): boolean {
  return ports === "any" || (port !== undefined && ports.some(([lo, hi]) => port >= lo && port <= hi));
}

/** The verdict the compiled rules give a packet from `src` to `dst:port`. */
export function evaluate(acls: CompiledAcl[], src: number, dst: number, port: number | undefined, proto: string): "accept" | "deny" {
  for (const a of acls) {
    if (a.proto && a.proto !== proto) continue;
    if (!inAddrs(a.src, src)) continue;
    if (a.dst.some((d) => inAddrs(d.addrs, dst) && inPorts(d.ports, port))) return a.action;
  }
  return "deny";
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
        // ICMP has no ports: a test target's port means nothing for it (as in the nft rules).
        const p = port === "*" || t.proto === "icmp" ? undefined : Number(port.split(/[-,]/)[0]);
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
