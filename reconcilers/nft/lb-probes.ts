import { formatIp4 } from "../../src/core/ipv4.js";
import { formatIp6 } from "../../src/core/ipv6.js";
import type { Resource } from "../../src/core/resource.js";
import type { Probe } from "../../src/core/lb-health.js";
import type { NftIntent } from "./intent.js";

/**
 * What the daemon's health checker probes for the config's load balancers: each backend of a
 * balancer with a `health_check`, at its address (an endpoint's as planned: leased or given).
 */
export function lbProbes(nft: NftIntent | undefined, desired: Resource[]): Probe[] {
  const eps = new Map(desired.filter((r) => r.kind === "endpoint").map((r) => [r.name, r.spec]));
  const out: Probe[] = [];
  for (const lb of nft?.loadBalancers ?? []) {
    const h = lb.health;
    if (!h) continue;
    for (const b of lb.backends) {
      const spec = b.endpoint !== undefined ? eps.get(b.endpoint) : undefined;
      const addr = b.endpoint !== undefined ? (lb.family === 4 ? spec?.ip : spec?.ip6)?.split("/")[0] : lb.family === 4 ? formatIp4(b.ip!) : formatIp6(b.ip6!);
      if (!addr) continue;
      out.push({
        id: `${lb.name}/${b.key}`,
        method: h.method,
        addr,
        port: h.port ?? b.port,
        path: h.path,
        timeoutMs: h.timeoutMs,
        intervalMs: h.intervalMs,
        rise: h.rise,
        fall: h.fall,
      });
    }
  }
  return out;
}
