import { contains, formatCidr4, parseCidr4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { parsePolicy } from "./policy-file.js";
import type { Policy } from "./policy-file.js";
import type { MeshSnapshot, NodeRecord } from "./store.js";

/**
 * The effective view of a mesh store's routes and exit nodes (MULTIHOST.md §2.4), pure:
 * a node's announced routes count only where the admin approved them (`routes_allowed`,
 * set by enroll/approve) or the policy's autoApprovers name one of its tags for a prefix
 * covering the route (Tailscale's rule: an approver for 10.0.0.0/8 approves 10.1.2.0/24).
 * An exit offer counts the same way. WireGuard gives one prefix to one peer (cryptokey
 * routing), so of several nodes announcing the same prefix one is primary: the one already
 * primary while its status lease lives, else the first live one by name, else (no liveness
 * known, or none alive) the one already primary, else the first by name — the route moves only
 * between live alternatives.
 */
export type AutoApprovers = Policy["autoApprovers"];

/**
 * The store policy's autoApprovers, read quietly: the policy's problems are reported where it
 * is set (`mesh policy set`) and where each host compiles it (the intent), not here.
 */
export function autoApproversOf(s: MeshSnapshot): AutoApprovers | undefined {
  return s.policy ? parsePolicy("etcd:policy", s.policy.text, { file: "etcd:policy", line: 1, col: 1 }, () => {}, [], true)?.autoApprovers : undefined;
}

const within = (route: Cidr4, outer: Cidr4) => route.prefix >= outer.prefix && contains(outer, route.network);
const tagged = (n: NodeRecord, by: string[]) => by.some((a) => n.tags.includes(a.replace(/^tag:/, "")));

/** The routes node `n` announces that are approved, in the order it announced them. */
export function routesOf(s: MeshSnapshot, n: NodeRecord, auto: AutoApprovers | undefined): Cidr4[] {
  const out: Cidr4[] = [];
  for (const r of s.requests[n.name]?.routes ?? []) {
    const c = parseCidr4(r);
    if (!c || c.hostBits) continue;
    const approved = n.routes_allowed.includes(formatCidr4(c)) || (auto?.routes ?? []).some((a) => within(c, a.prefix) && tagged(n, a.by));
    if (approved) out.push({ network: c.network, prefix: c.prefix });
  }
  return out;
}

/** Whether node `n` offers itself as an exit node and that offer is approved. */
export function exitOf(s: MeshSnapshot, n: NodeRecord, auto: AutoApprovers | undefined): boolean {
  return (s.requests[n.name]?.exit_node ?? false) && (n.exit_node_allowed || tagged(n, auto?.exitNode ?? []));
}

/**
 * For each prefix announced by several nodes, which one carries it. `alive`: the nodes whose
 * status lease lives (undefined: liveness unknown, as with a stale snapshot, so nothing moves
 * for it). `previous`: the choices this host applied last.
 */
export function primaries(advertisers: Map<string, string[]>, alive: Set<string> | undefined, previous: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [prefix, names] of advertisers) {
    const sorted = [...names].sort();
    const prev = previous[prefix];
    const had = prev !== undefined && sorted.includes(prev) ? prev : undefined;
    if (alive === undefined) out[prefix] = had ?? sorted[0]!;
    else if (had !== undefined && alive.has(had)) out[prefix] = had;
    else out[prefix] = sorted.find((n) => alive.has(n)) ?? had ?? sorted[0]!;
  }
  return out;
}

const PRIVATE4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16"].map((c) => parseCidr4(c)!);

/**
 * Where to reach a node first, of the candidates its status lists (MULTIHOST.md §2.4): the
 * first public one (reachable from anywhere), else the first. WireGuard treats it as a start:
 * a newer handshake from elsewhere (roaming) wins, which the wg-peer kind already keeps.
 */
export function bestEndpoint(candidates: string[]): string | undefined {
  const isPublic = (ep: string) => {
    if (ep.startsWith("[")) return !/^\[(f[cd]|fe[89ab]|::1\])/i.test(ep);
    const ip = parseCidr4(`${ep.split(":")[0]}/32`);
    return !!ip && !PRIVATE4.some((c) => contains(c, ip.network));
  };
  return candidates.find(isPublic) ?? candidates[0];
}
