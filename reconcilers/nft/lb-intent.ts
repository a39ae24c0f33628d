import { closest, distance } from "fastest-levenshtein";
import type { Diagnostic, SourcePos } from "../../src/core/diagnostics.js";
import { parseDuration } from "../../src/core/duration.js";
import { contains, formatCidr4, formatIp4, parseIp4 } from "../../src/core/ipv4.js";
import { contains6, formatCidr6, formatIp6, parseIp6 } from "../../src/core/ipv6.js";
import type { LoadedFile } from "../../src/config/load.js";
import { pointer } from "../../src/config/positions.js";
import type { EndpointIntent } from "../endpoint/intent.js";
import type { NetworkIntent } from "../network/intent.js";

/**
 * `[[load_balancers]]`: a virtual IP:port balanced over backends by nft (numgen / jhash into a
 * verdict map of DNAT chains; IPVS does not exist on this kernel). Validated here, compiled by
 * compile.ts (lb.ts), health-checked by the daemon (src/watch/health.ts).
 */
export interface LbBackend {
  /** "ip:port" / "[ip6]:port": the key health is recorded under */
  key: string;
  ip?: number;
  ip6?: bigint;
  /** an endpoint by name: its address of the VIP's family, resolved at plan time */
  endpoint?: string;
  port: number;
  weight: number;
  source: SourcePos;
}

export interface LbHealthCheck {
  method: "tcp" | "http";
  port?: number;
  path: string;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

export interface LoadBalancerIntent {
  name: string;
  family: 4 | 6;
  vip: number | bigint;
  port: number;
  protocol: "tcp" | "udp";
  algorithm: "round_robin" | "random" | "source_hash";
  backends: LbBackend[];
  health?: LbHealthCheck;
  source: SourcePos;
}

type Obj = Record<string, unknown>;

/** "10.99.0.1:80" or "[fd99::1]:80". */
function hostPort(s: string): { ip?: number; ip6?: bigint; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || !(port >= 1 && port <= 65535)) return undefined;
  if (m[1] !== undefined) {
    const ip6 = parseIp6(m[1]);
    return ip6 === undefined ? undefined : { ip6, port };
  }
  const ip = parseIp4(m[2]!);
  return ip === undefined ? undefined : { ip, port };
}

export function loadBalancers(files: LoadedFile[], networks: NetworkIntent[], endpoints: EndpointIntent[], diags: Diagnostic[]): LoadBalancerIntent[] {
  const out: LoadBalancerIntent[] = [];
  const err = (message: string, source: SourcePos, hint?: string) => diags.push({ severity: "error", message, source, hint });
  const eps = new Map(endpoints.map((e) => [e.name, e]));
  const nets = new Map(networks.map((n) => [n.name, n]));
  for (const f of files) {
    if (f.kind !== "boltfile") continue;
    ((f.data.load_balancers ?? []) as Obj[]).forEach((raw, i) => {
      const pos = (...k: (string | number)[]) => f.positions.value(pointer(["load_balancers", i, ...k]));
      const keyPos = (...k: (string | number)[]) => f.positions.key(pointer(["load_balancers", i, ...k]));
      const name = String(raw.name);
      const what = `load balancer "${name}"`;
      const listen = hostPort(String(raw.listen ?? ""));
      if (!listen) return err(`${what}: listen "${String(raw.listen)}" is not "ip:port" or "[ipv6]:port" with a port 1-65535`, pos("listen"));
      const family = listen.ip6 !== undefined ? 6 : 4;
      // A VIP inside a bolt network would be answered (ARP/NDP) by nobody, or collide with an endpoint.
      const inside = networks.find((n) => (family === 4 ? contains(n.subnet, listen.ip!) : n.v6 !== undefined && contains6(n.v6.subnet, listen.ip6!)));
      if (inside)
        return err(
          `${what}: listen address ${family === 4 ? formatIp4(listen.ip!) : formatIp6(listen.ip6!)} is inside network "${inside.name}" (${family === 4 ? formatCidr4(inside.subnet) : formatCidr6(inside.v6!.subnet)})`,
          pos("listen"),
          "a VIP is an address of its own: pick one outside every bolt network (a host address, or a routed one)",
        );
      let algorithm = (raw.algorithm ?? "round_robin") as string;
      if (algorithm === "weighted") algorithm = "random";
      if (algorithm === "least_connections") {
        diags.push({
          severity: "warning",
          message: `accepted, not enforced: ${what}: algorithm "least_connections" — nft keeps no per-backend connection count; balanced as round_robin`,
          source: pos("algorithm"),
        });
        algorithm = "round_robin";
      }
      const backends: LbBackend[] = [];
      let bad = false;
      ((raw.backends ?? []) as Obj[]).forEach((b, j) => {
        const at = keyPos("backends", j);
        const port = Number(b.port);
        const weight = typeof b.weight === "number" ? b.weight : 100;
        if ((b.endpoint === undefined) === (b.ip === undefined)) {
          bad = true;
          return err(`${what}: backend ${j + 1}: give exactly one of ip or endpoint`, at);
        }
        if (typeof b.endpoint === "string") {
          const e = eps.get(b.endpoint);
          if (!e) {
            bad = true;
            const names = [...eps.keys()];
            const guess = names.length ? closest(b.endpoint, names) : undefined;
            return err(
              `${what}: backend ${j + 1}: endpoint "${b.endpoint}" is not defined`,
              pos("backends", j, "endpoint"),
              guess && distance(guess, b.endpoint) <= 3 ? `did you mean "${guess}"?` : undefined,
            );
          }
          if (family === 6 && !nets.get(e.network)?.v6) {
            bad = true;
            return err(
              `${what}: backend ${j + 1}: endpoint "${e.name}" has no IPv6 address (network "${e.network}" is IPv4-only) but the VIP is IPv6`,
              pos("backends", j, "endpoint"),
            );
          }
          backends.push({ key: `${b.endpoint}:${port}`, endpoint: b.endpoint, port, weight, source: at });
          return;
        }
        const s = String(b.ip);
        const ip = s.includes(":") ? undefined : parseIp4(s);
        const ip6 = s.includes(":") ? parseIp6(s) : undefined;
        if (ip === undefined && ip6 === undefined) {
          bad = true;
          return err(`${what}: backend ${j + 1}: ip "${s}" is not an IP address`, pos("backends", j, "ip"));
        }
        if ((ip6 !== undefined ? 6 : 4) !== family) {
          bad = true;
          return err(
            `${what}: backend ${j + 1}: ${s} is IPv${ip6 !== undefined ? 6 : 4} but the VIP is IPv${family} (nft does not translate between families)`,
            pos("backends", j, "ip"),
          );
        }
        backends.push({ key: ip6 !== undefined ? `[${formatIp6(ip6)}]:${port}` : `${formatIp4(ip!)}:${port}`, ip, ip6, port, weight, source: at });
      });
      const seen = new Set<string>();
      for (const b of backends) {
        if (seen.has(b.key)) {
          bad = true;
          err(`${what}: backend ${b.key} is listed twice`, b.source);
        }
        seen.add(b.key);
      }
      const hc = raw.health_check as Obj | undefined;
      let health: LbHealthCheck | undefined;
      if (hc) {
        if (hc.method === "udp")
          diags.push({
            severity: "warning",
            message: `accepted, not enforced: ${what}: health_check method "udp" — a UDP probe has no answer to wait for; backends count as healthy`,
            source: pos("health_check", "method"),
          });
        else
          health = {
            method: hc.method === "http" ? "http" : "tcp",
            port: typeof hc.port === "number" ? hc.port : undefined,
            path: typeof hc.path === "string" ? hc.path : "/",
            intervalMs: hc.interval === undefined ? 2000 : parseDuration(String(hc.interval)),
            timeoutMs: hc.timeout === undefined ? 1000 : parseDuration(String(hc.timeout)),
            rise: typeof hc.rise === "number" ? hc.rise : 2,
            fall: typeof hc.fall === "number" ? hc.fall : typeof hc.retries === "number" ? hc.retries : 3,
          };
        if (health && health.timeoutMs >= health.intervalMs) {
          bad = true;
          err(`${what}: health_check timeout must be shorter than its interval`, keyPos("health_check"));
        }
      }
      if (bad) return;
      out.push({
        name,
        family,
        vip: family === 4 ? listen.ip! : listen.ip6!,
        port: listen.port,
        protocol: raw.protocol === "udp" ? "udp" : "tcp",
        algorithm: algorithm as LoadBalancerIntent["algorithm"],
        backends,
        health,
        source: keyPos(),
      });
    });
  }
  const names = new Map<string, LoadBalancerIntent>();
  const vips = new Map<string, LoadBalancerIntent>();
  for (const lb of out) {
    const prev = names.get(lb.name);
    if (prev) err(`load balancer "${lb.name}" is defined twice`, lb.source);
    names.set(lb.name, lb);
    const vk = `${lb.protocol} ${String(lb.vip)} ${lb.port}`;
    const other = vips.get(vk);
    if (other) err(`load balancer "${lb.name}": ${lb.protocol} ${lb.port} on its VIP is already load balancer "${other.name}"'s`, lb.source);
    vips.set(vk, lb);
  }
  return out;
}
