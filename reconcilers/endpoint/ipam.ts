import { formatIp4, parseIp4 } from "../../src/core/ipv4.js";
import { formatIp6, parseIp6 } from "../../src/core/ipv6.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { EndpointIntent } from "./intent.js";
import type { NetworkIntent } from "../network/intent.js";

/** The store key of an endpoint's IPv6 lease (names cannot hold "/", so it never meets a v4 key). */
export const lease6Key = (endpoint: string) => `${endpoint}/6`;

/** One address family's view of networks and endpoints: what IPAM needs and nothing else. */
interface Family<A extends number | bigint> {
  label: string;
  pool(n: NetworkIntent): { start: A; end: A; gateway: A } | undefined;
  fixed(e: EndpointIntent): A | undefined;
  parse(s: string): A | undefined;
  format(a: A): string;
  next(a: A): A;
}

const V4: Family<number> = {
  label: "",
  pool: (n) => ({ ...n.pool, gateway: n.gateway }),
  fixed: (e) => e.ip,
  parse: parseIp4,
  format: formatIp4,
  next: (a) => a + 1,
};

const V6: Family<bigint> = {
  label: "ipv6 ",
  pool: (n) => (n.v6 ? { ...n.v6.pool, gateway: n.v6.gateway } : undefined),
  fixed: (e) => e.ip6,
  parse: parseIp6,
  format: formatIp6,
  next: (a) => a + 1n,
};

/**
 * Deterministic IPAM, per address family: a static address wins; else the endpoint keeps its
 * lease (store, or the address the kernel shows for it when the state dir was lost) if it is
 * still inside the pool; else the first free address of the pool, sequentially (a person reads
 * these addresses; IPv6 is not randomised). Pure: new leases are persisted by apply.
 */
export function assignAddresses(
  networks: NetworkIntent[],
  endpoints: EndpointIntent[],
  leases: Map<string, string>,
  liveIps: Map<string, string>,
): { ips: Map<string, number>; ips6: Map<string, bigint>; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const ips = assignFamily(V4, networks, endpoints, (e) => [leases.get(e), liveIps.get(e)], diagnostics);
  const ips6 = assignFamily(V6, networks, endpoints, (e) => [leases.get(lease6Key(e)), liveIps.get(lease6Key(e))], diagnostics);
  return { ips, ips6, diagnostics };
}

function assignFamily<A extends number | bigint>(
  f: Family<A>,
  networks: NetworkIntent[],
  endpoints: EndpointIntent[],
  known: (endpoint: string) => (string | undefined)[],
  diagnostics: Diagnostic[],
): Map<string, A> {
  const pools = new Map(networks.flatMap((n) => (f.pool(n) ? [[n.name, f.pool(n)!] as const] : [])));
  const ips = new Map<string, A>();
  const used = new Map<string, Set<A>>([...pools].map(([name, p]) => [name, new Set([p.gateway])]));
  const members = endpoints.filter((e) => pools.has(e.network));
  for (const e of members) {
    const ip = f.fixed(e);
    if (ip === undefined) continue;
    ips.set(e.name, ip);
    used.get(e.network)!.add(ip);
  }
  const inPool = (p: { start: A; end: A; gateway: A }, ip: A | undefined) => ip !== undefined && ip >= p.start && ip <= p.end && ip !== p.gateway;
  const dynamic = members.filter((e) => f.fixed(e) === undefined);
  // First pass: keep existing leases so that a new endpoint never steals an old one's address.
  for (const e of dynamic) {
    const p = pools.get(e.network)!;
    const taken = used.get(e.network)!;
    for (const cand of known(e.name)) {
      const ip = cand === undefined ? undefined : f.parse(cand);
      if (inPool(p, ip) && !taken.has(ip!)) {
        ips.set(e.name, ip!);
        taken.add(ip!);
        break;
      }
    }
  }
  for (const e of dynamic) {
    if (ips.has(e.name)) continue;
    const p = pools.get(e.network)!;
    const taken = used.get(e.network)!;
    let ip = p.start;
    while (ip <= p.end && taken.has(ip)) ip = f.next(ip);
    if (ip > p.end) {
      diagnostics.push({
        severity: "error",
        message: `endpoint "${e.name}": no free ${f.label}address left in network "${e.network}" (pool ${f.format(p.start)}–${f.format(p.end)})`,
        source: e.source,
      });
      continue;
    }
    ips.set(e.name, ip);
    taken.add(ip);
  }
  return ips;
}
