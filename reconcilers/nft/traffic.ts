import { formatIp4 } from "../../src/core/ipv4.js";
import { formatIp6 } from "../../src/core/ipv6.js";
import { TC } from "../tc/intent.js";
import type { TrafficRuleIntent } from "../tc/intent.js";
import type { NftRule } from "./compile.js";

/**
 * [[traffic.rules]] as nft rules of bolt's `traffic` chain, jumped to from postrouting: after
 * routing (ip_forward sets skb->priority from the TOS byte, so an earlier mark would be
 * overwritten) and before the egress qdisc, whose HTB tree classifies by skb->priority when it
 * names one of its classes. Each rule ends in `return`: the first matching rule decides.
 * A rule matches traffic to what it names (destination address and port) or from it (source
 * address and port); DSCP is an IPv4 or IPv6 header field, so a rule that reads or writes it is
 * written once per family.
 */
export function trafficRules(rules: TrafficRuleIntent[], ips4: Map<string, number>, ips6: Map<string, bigint>): NftRule[] {
  const out: NftRule[] = [];
  for (const r of rules) {
    const m = r.match;
    const a4 = [...m.cidrs4, ...m.endpoints.flatMap((e) => (ips4.has(e) ? [formatIp4(ips4.get(e)!)] : []))];
    const a6 = [...m.cidrs6, ...m.endpoints.flatMap((e) => (ips6.has(e) ? [formatIp6(ips6.get(e)!)] : []))];
    const hasAddr = m.cidrs4.length + m.cidrs6.length + m.endpoints.length > 0;
    const needsFamily = hasAddr || m.dscp !== undefined || r.setDscp !== undefined;
    const fams: ("4" | "6" | "any")[] = needsFamily
      ? [...(a4.length || !hasAddr ? ["4" as const] : []), ...(a6.length || !hasAddr ? ["6" as const] : [])]
      : ["any"];
    const dirs: ("to" | "from" | "any")[] = hasAddr || m.ports ? ["to", "from"] : ["any"];
    const proto = protoMatch(m.protocols, !!m.ports);
    for (const fam of fams)
      for (const dir of dirs) {
        const ipk = fam === "6" ? "ip6" : "ip";
        const parts: string[] = [];
        if (fam !== "any" && !hasAddr) parts.push(`meta nfproto ${fam === "6" ? "ipv6" : "ipv4"}`);
        const addrs = fam === "6" ? a6 : a4;
        if (hasAddr) parts.push(`${ipk} ${dir === "to" ? "daddr" : "saddr"} ${set(addrs)}`);
        if (proto) parts.push(proto);
        if (m.ports) parts.push(`${portKey(m.protocols)} ${dir === "to" ? "dport" : "sport"} ${range(m.ports)}`);
        if (m.dscp !== undefined) parts.push(`${ipk} dscp ${m.dscp}`);
        parts.push(`meta priority set ${TC.major}:${r.minor.toString(16)}`);
        if (r.setDscp !== undefined) parts.push(`${ipk} dscp set ${r.setDscp}`);
        parts.push("return");
        out.push({ key: `traffic:${r.index}${dir === "any" ? "" : `:${dir}`}${fam === "any" ? "" : `/${fam}`}`, text: parts.join(" "), source: r.source });
      }
  }
  return out;
}

function set(items: string[]): string {
  return items.length === 1 ? items[0]! : `{ ${items.join(", ")} }`;
}

function range(p: [number, number]): string {
  return p[0] === p[1] ? String(p[0]) : `${p[0]}-${p[1]}`;
}

function protoMatch(protocols: TrafficRuleIntent["match"]["protocols"], ported: boolean): string | undefined {
  if (!protocols) return undefined;
  if (protocols.includes("icmp")) return "meta l4proto { icmp, ipv6-icmp }";
  // One protocol with ports: `udp dport` carries its own protocol match.
  if (protocols.length === 1 && ported) return undefined;
  return protocols.length === 1 ? `meta l4proto ${protocols[0]}` : `meta l4proto { ${protocols.join(", ")} }`;
}

function portKey(protocols: TrafficRuleIntent["match"]["protocols"]): string {
  return protocols?.length === 1 ? protocols[0]! : "th";
}
