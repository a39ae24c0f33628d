import { formatIp4, parseIp4 } from "../../src/core/ipv4.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { EndpointIntent } from "./intent.js";
import type { NetworkIntent } from "../network/intent.js";

/**
 * Deterministic IPAM: a static ip wins; else the endpoint keeps its lease (store, or the
 * address the kernel shows for it when the state dir was lost) if it is still inside the
 * pool; else the first free address of the pool. Pure: new leases are persisted by apply.
 */
export function assignAddresses(
  networks: NetworkIntent[],
  endpoints: EndpointIntent[],
  leases: Map<string, string>,
  liveIps: Map<string, string>,
): { ips: Map<string, number>; diagnostics: Diagnostic[] } {
  const byNet = new Map(networks.map((n) => [n.name, n]));
  const ips = new Map<string, number>();
  const used = new Map<string, Set<number>>(networks.map((n) => [n.name, new Set([n.gateway])]));
  const diagnostics: Diagnostic[] = [];
  for (const e of endpoints)
    if (e.ip !== undefined && byNet.has(e.network)) {
      ips.set(e.name, e.ip);
      used.get(e.network)!.add(e.ip);
    }
  const inPool = (n: NetworkIntent, ip: number | undefined) => ip !== undefined && ip >= n.pool.start && ip <= n.pool.end && ip !== n.gateway;
  const dynamic = endpoints.filter((e) => e.ip === undefined && byNet.has(e.network));
  // First pass: keep existing leases so that a new endpoint never steals an old one's address.
  for (const e of dynamic) {
    const n = byNet.get(e.network)!;
    const taken = used.get(n.name)!;
    for (const cand of [leases.get(e.name), liveIps.get(e.name)]) {
      const ip = cand === undefined ? undefined : parseIp4(cand);
      if (inPool(n, ip) && !taken.has(ip!)) {
        ips.set(e.name, ip!);
        taken.add(ip!);
        break;
      }
    }
  }
  for (const e of dynamic) {
    if (ips.has(e.name)) continue;
    const n = byNet.get(e.network)!;
    const taken = used.get(n.name)!;
    let ip = n.pool.start;
    while (ip <= n.pool.end && taken.has(ip)) ip++;
    if (ip > n.pool.end) {
      diagnostics.push({
        severity: "error",
        message: `endpoint "${e.name}": no free address left in network "${n.name}" (pool ${formatIp4(n.pool.start)}–${formatIp4(n.pool.end)})`,
        source: e.source,
      });
      continue;
    }
    ips.set(e.name, ip);
    taken.add(ip);
  }
  return { ips, diagnostics };
}
