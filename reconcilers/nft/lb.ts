import { formatIp4 } from "../../src/core/ipv4.js";
import { formatIp6 } from "../../src/core/ipv6.js";
import type { LoadBalancerIntent } from "./lb-intent.js";

/**
 * A load balancer in bolt's table, kube-proxy's nftables shape (IPVS does not exist here):
 *   nat_pre / nat_out: `ip daddr VIP tcp dport P jump lbN`
 *   lbN:               `numgen inc mod W vmap { 0 : goto lbN_0, 1 : goto lbN_0, 2 : goto lbN_1 }`
 *   lbN_M:             `meta l4proto tcp dnat ip to BACKEND:PORT`
 *   forward:           `ip daddr BACKEND tcp dport PORT ct status dnat accept` (before isolation)
 * Weights become that many of the generator's values (divided by their gcd, so a 100/100 pair
 * is `mod 2`); round_robin counts (`numgen inc`), random draws (`numgen random`), source_hash
 * hashes the client address (`jhash ip saddr`: a client stays on its backend while the set is
 * unchanged). Chains are named by index: a config name may hold characters nft identifiers do not.
 * A backend the health check found down is not in the map; with none left the VIP is not
 * DNATed at all (a connection then meets whatever the address itself answers: usually a reset).
 */
export interface LbChains {
  /** rules for nat_pre and nat_out (same text) */
  nat: { key: string; text: string }[];
  forward: { key: string; text: string }[];
  chains: { name: string; rules: { key: string; text: string }[] }[];
}

export interface LbBackendTarget {
  key: string;
  addr: string;
  port: number;
  weight: number;
}

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);

export function lbChains(
  lbs: LoadBalancerIntent[],
  addrOf: (lb: LoadBalancerIntent, b: LoadBalancerIntent["backends"][number]) => string | undefined,
  down: Set<string>,
): LbChains {
  const out: LbChains = { nat: [], forward: [], chains: [] };
  lbs.forEach((lb, i) => {
    const ip = lb.family === 4 ? "ip" : "ip6";
    const vip = lb.family === 4 ? formatIp4(lb.vip as number) : formatIp6(lb.vip as bigint);
    const chain = `lb${i}`;
    const targets: LbBackendTarget[] = [];
    for (const b of lb.backends) {
      const addr = addrOf(lb, b);
      if (addr === undefined) continue;
      out.forward.push({ key: `lb:${lb.name}:${b.key}`, text: `${ip} daddr ${addr} ${lb.protocol} dport ${b.port} ct status dnat accept` });
      if (!down.has(`${lb.name}/${b.key}`)) targets.push({ key: b.key, addr, port: b.port, weight: b.weight });
    }
    const rules: { key: string; text: string }[] = [];
    if (targets.length) {
      const g = targets.reduce((a, t) => gcd(a, t.weight), 0);
      let at = 0;
      const entries: string[] = [];
      targets.forEach((t, j) => {
        const w = t.weight / g;
        // One element per value: nft 1.0.6 cannot evaluate a range key in an anonymous verdict map here.
        for (let k = 0; k < w; k++) entries.push(`${at + k} : goto ${chain}_${j}`);
        at += w;
        const dest = lb.family === 4 ? `${t.addr}:${t.port}` : `[${t.addr}]:${t.port}`;
        out.chains.push({ name: `${chain}_${j}`, rules: [{ key: `dnat:${t.key}`, text: `meta l4proto ${lb.protocol} dnat ${ip} to ${dest}` }] });
      });
      const gen = lb.algorithm === "source_hash" ? `jhash ${ip} saddr mod ${at}` : `numgen ${lb.algorithm === "random" ? "random" : "inc"} mod ${at}`;
      rules.push({ key: "pick", text: `${gen} vmap { ${entries.join(", ")} }` });
      out.nat.push({ key: `lb:${lb.name}`, text: `${ip} daddr ${vip} ${lb.protocol} dport ${lb.port} jump ${chain}` });
      out.chains.push({ name: chain, rules });
    }
  });
  return out;
}
