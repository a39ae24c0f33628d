import { formatCidr4, formatIp4, parseCidr4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { formatCidr6, formatIp6, parseCidr6 } from "../../src/core/ipv6.js";
import type { Cidr6 } from "../../src/core/ipv6.js";
import { FAM, mergeCidrs, mergeCidrs6 } from "./family.js";
import { lbChains } from "./lb.js";
import { trafficRules } from "./traffic.js";
import { POLICY_MARK } from "../rule/intent.js";
import type { PolicyIntent } from "../rule/intent.js";
import type { Fam } from "./family.js";
import type { SourcePos } from "../../src/core/diagnostics.js";
import type { NetworkIntent } from "../network/intent.js";
import type { AddrRef, FirewallRuleIntent, NftIntent, SegmentIntent } from "./intent.js";
import { nftIfname, nftName } from "./grammar.js";
import { EXIT } from "../wireguard/intent.js";
import type { MeshIntent, MeshNode } from "../wireguard/intent.js";
import { ICMPS, PORTED, addrSet, addrSet6, compileAcls } from "../wireguard/acl.js";
import type { CompiledAcl } from "../wireguard/acl.js";
import { nodeAddress6Text } from "../wireguard/mesh6.js";

/**
 * Compiles the intent into bolt's table `inet bolt`: sets, base chains and regular chains with
 * keyed rules. Deterministic: the same config always yields the same rules in the same order.
 *
 * forward chain order (nftables: every base chain on a hook votes; a drop anywhere wins,
 * an accept only ends this chain):
 *   established/related accept → ddos → firewall rules → mesh → segments → port-forward accepts
 *   → isolation and no-internet drops (set lookups) → internet accepts
 */
export interface NftRule {
  key: string;
  text: string;
  source?: SourcePos;
}

export interface NftChain {
  name: string;
  base?: { type: "filter" | "nat" | "route"; hook: string; prio: number };
  rules: NftRule[];
}

export interface NftSet {
  name: string;
  decl: string[];
  elements: string[];
  dynamic: boolean;
}

export interface NftTable {
  sets: NftSet[];
  chains: NftChain[];
}

export interface CompileInput {
  nft: NftIntent;
  networks: NetworkIntent[];
  /** endpoint name → address */
  endpointIps: Map<string, number>;
  /** endpoint name → IPv6 address (endpoints on dual-stack networks) */
  endpointIps6?: Map<string, bigint>;
  /** the mesh node, with its effective address (given, leased or derived) */
  mesh?: { intent: MeshIntent; self: MeshNode };
  /** the WireGuard interface that carries the default route, with its addresses (wireguard/intent.ts fullTunnel) */
  fullTunnel?: { ifname: string; addresses: number[]; source: SourcePos };
}

const DYN_SET = ["type ipv4_addr", "size 65535", "flags dynamic,timeout", "timeout 1m"];
const DYN_SET6 = ["type ipv6_addr", "size 65535", "flags dynamic,timeout", "timeout 1m"];
/**
 * Per-source DDoS limits key IPv6 by its /64: one host (one SLAAC prefix) can use 2^64
 * addresses, so a per-address limit would limit nothing.
 */
const SRC6 = "ip6 saddr and ffff:ffff:ffff:ffff::";
/**
 * Neighbour discovery is IPv6's ARP: nft's inet hooks see it (they never see ARP), so a
 * firewall rule or DDoS limit that matched it would cut a link's IPv6 altogether. Accepted first.
 */
const NDP = "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept";

export function compileTable(input: CompileInput): NftTable | undefined {
  const { nft, networks } = input;
  const mesh = input.mesh;
  const meshNeedsNft =
    !!mesh &&
    (mesh.intent.acls.length > 0 || mesh.intent.advertise.length > 0 || !!mesh.intent.advertise6?.length || mesh.intent.exitNode || !!mesh.intent.useExitNode);
  const full = input.fullTunnel;
  const hasAnything =
    networks.length ||
    nft.portForwards.length ||
    nft.rules.length ||
    nft.ddos ||
    nft.segments.length ||
    nft.loadBalancers.length ||
    nft.policies?.length ||
    nft.traffic?.length ||
    meshNeedsNft ||
    full;
  if (!hasAnything) return undefined;
  const sets: NftSet[] = [];
  const chain = (name: string, base?: NftChain["base"]): NftChain => ({ name, base, rules: [] });
  const rawPre = chain("raw_pre", { type: "filter", hook: "prerouting", prio: -300 });
  const input_ = chain("input", { type: "filter", hook: "input", prio: 0 });
  const forward = chain("forward", { type: "filter", hook: "forward", prio: 0 });
  const ddos = chain("ddos");
  const firewall = chain("firewall");
  const segments = chain("segments");
  const meshAcl = chain("mesh_acl");
  const natPre = chain("nat_pre", { type: "nat", hook: "prerouting", prio: -100 });
  const natOut = chain("nat_out", { type: "nat", hook: "output", prio: -100 });
  const natPost = chain("nat_post", { type: "nat", hook: "postrouting", prio: 100 });
  const manglePre = chain("mangle_pre", { type: "filter", hook: "prerouting", prio: -150 });
  const manglePost = chain("mangle_post", { type: "filter", hook: "postrouting", prio: -150 });
  // A `route` chain: a mark set here on the host's own packets makes the kernel route them again.
  const mangleOut = chain("mangle_out", { type: "route", hook: "output", prio: -150 });
  for (const p of nft.policies ?? []) {
    const r = { key: `policy:${p.name}`, text: policyMark(p), source: p.source };
    manglePre.rules.push(r);
    mangleOut.rules.push(r);
  }

  sets.push({ name: "bridges", decl: ["type ifname"], elements: networks.map((n) => nftIfname(n.bridge)).sort(), dynamic: false });
  sets.push({ name: "bolt_nets", decl: ["type ipv4_addr", "flags interval"], elements: mergeCidrs(networks.map((n) => n.subnet)), dynamic: false });
  const nets6 = networks.filter((n) => n.v6);
  // IPv6 rules only when something is IPv6: a v4-only config compiles exactly as before.
  const v6 = uses6(input);
  if (v6) {
    sets.push({ name: "bolt_nets6", decl: ["type ipv6_addr", "flags interval"], elements: mergeCidrs6(nets6.map((n) => n.v6!.subnet)), dynamic: false });
    input_.rules.push({ key: "ndp", text: NDP });
  }

  forward.rules.push({ key: "established", text: "ct state established,related accept" });

  if (nft.ddos) {
    const d = nft.ddos;
    nft.ddos.blocklists.forEach((bl, i) => {
      const name = `blocklist${i}`;
      if (bl.cidrs.length || !bl.cidrs6.length) {
        sets.push({ name, decl: ["type ipv4_addr", "flags interval"], elements: mergeCidrs(bl.cidrs), dynamic: false });
        rawPre.rules.push({ key: `blocklist:${i}`, text: `ip saddr @${name} counter drop`, source: bl.source });
      }
      if (bl.cidrs6.length) {
        sets.push({ name: `${name}_6`, decl: ["type ipv6_addr", "flags interval"], elements: mergeCidrs6(bl.cidrs6), dynamic: false });
        rawPre.rules.push({ key: `blocklist:${i}/6`, text: `ip6 saddr @${name}_6 counter drop`, source: bl.source });
      }
    });
    if (d.synFlood) {
      sets.push({ name: "ddos_syn", decl: DYN_SET, elements: [], dynamic: true });
      ddos.rules.push({
        key: "syn-flood",
        text: "tcp flags & (fin | syn | rst | ack) == syn update @ddos_syn { ip saddr limit rate over 50/second burst 100 packets } counter drop",
        source: d.source,
      });
    }
    if (d.connRate) {
      sets.push({ name: "ddos_conn", decl: DYN_SET, elements: [], dynamic: true });
      ddos.rules.push({
        key: "connection-rate",
        text: `ct state new update @ddos_conn { ip saddr limit rate over ${d.connRate}/second burst ${d.connRate} packets } counter drop`,
        source: d.source,
      });
    }
    if (d.pktRate) {
      sets.push({ name: "ddos_pkt", decl: DYN_SET, elements: [], dynamic: true });
      ddos.rules.push({
        key: "packet-rate",
        text: `update @ddos_pkt { ip saddr limit rate over ${d.pktRate}/second burst ${d.pktRate} packets } counter drop`,
        source: d.source,
      });
    }
    if (v6)
      for (const r of ddos6(d)) {
        ddos.rules.push(r);
        sets.push({ name: /@(\w+)/.exec(r.text)![1]!, decl: DYN_SET6, elements: [], dynamic: true });
      }
    if (ddos.rules.length) {
      input_.rules.push({ key: "ddos", text: "jump ddos" });
      forward.rules.push({ key: "ddos", text: "jump ddos" });
    }
  }

  const resolve = (r: AddrRef, fam: Fam): string | undefined => addrExpr(r, input, nft.segments, fam);
  const ordered = [...nft.rules].map((r, i) => ({ r, i })).sort((a, b) => a.r.priority - b.r.priority || a.i - b.i);
  for (const { r } of ordered) firewall.rules.push(...firewallRules(r, resolve, v6));
  if (firewall.rules.length) {
    input_.rules.push({ key: "firewall", text: "jump firewall" });
    forward.rules.push({ key: "firewall", text: "jump firewall" });
  }

  if (mesh && meshNeedsNft) {
    const gw = nftIfname(mesh.intent.ifname);
    const m = mesh.intent;
    if (m.acls.length) {
      meshAcl.rules.push(...aclRules(compileAcls(m, mesh.self), gw));
      input_.rules.push({ key: "mesh-acl", text: `iifname ${gw} jump mesh_acl`, source: m.source });
      forward.rules.push({ key: "mesh-acl", text: `iifname ${gw} jump mesh_acl`, source: m.source });
    }
    if (m.advertise.length) {
      // Subnet router: mesh → advertised subnets, source NATed like Tailscale's default.
      const adv = addrSet(m.advertise);
      forward.rules.push({ key: "mesh-subnet-routes", text: `iifname ${gw} ip daddr ${adv} accept`, source: m.source });
      natPost.rules.push({ key: "mesh-subnet-routes", text: `iifname ${gw} ip daddr ${adv} oifname != ${gw} masquerade`, source: m.source });
    }
    if (m.advertise6?.length) {
      // The same for IPv6 subnets (masqueraded too: the subnet need not route the mesh's ULA back).
      const adv6 = m.advertise6.length === 1 ? m.advertise6[0]! : `{ ${m.advertise6.join(", ")} }`;
      forward.rules.push({ key: "mesh-subnet-routes6", text: `iifname ${gw} ip6 daddr ${adv6} accept`, source: m.source });
      natPost.rules.push({ key: "mesh-subnet-routes6", text: `iifname ${gw} ip6 daddr ${adv6} oifname != ${gw} masquerade`, source: m.source });
    }
    if (m.exitNode) {
      forward.rules.push({ key: "mesh-exit-node", text: `iifname ${gw} accept`, source: m.source });
      natPost.rules.push({ key: "mesh-exit-node", text: `iifname ${gw} oifname != ${gw} masquerade`, source: m.source });
    }
  }
  if (full) {
    // wg-quick's answer to strict reverse-path filtering with a default route in the tunnel:
    // WireGuard's own (marked) UDP packets save their mark in conntrack, replies get it back
    // before routing, and net.ipv4.conf.all.src_valid_mark=1 lets rp_filter use it.
    const mark = `0x${EXIT.fwmark.toString(16)}`;
    const key = mesh?.intent.ifname === full.ifname ? "mesh-exit" : "full-tunnel";
    manglePre.rules.push({ key: `${key}-restore-mark`, text: "meta l4proto udp meta mark set ct mark", source: full.source });
    manglePost.rules.push({ key: `${key}-save-mark`, text: `meta l4proto udp meta mark ${mark} ct mark set meta mark`, source: full.source });
    // wg-quick's anti-spoofing (CVE-2019-14899): a packet for the tunnel's address that arrives
    // on another interface from a source that is not this host's is dropped before conntrack.
    const dev = nftIfname(full.ifname);
    // IPv4 ones (an IPv6 address of the list is not a number: the IPv6 rule below covers the mesh's).
    for (const a of full.addresses.filter((x) => Number.isInteger(x)))
      rawPre.rules.push({
        key: `${key}-antispoof:${formatIp4(a)}`,
        text: `iifname != ${dev} ip daddr ${formatIp4(a)} fib saddr type != local drop`,
        source: full.source,
      });
    // The mesh node's IPv6 address, like wg-quick does for each IPv6 address of the interface.
    const six = mesh && mesh.intent.ifname === full.ifname ? nodeAddress6Text(mesh.intent, mesh.self) : undefined;
    if (six !== undefined)
      rawPre.rules.push({
        key: `${key}-antispoof:${six}`,
        text: `iifname != ${dev} ip6 daddr ${six} fib saddr type != local drop`,
        source: full.source,
      });
  }

  // Segment policies before port-forward accepts: "deny all from external" also covers a
  // port published to a member (explicit zero-trust policy beats a convenience publish).
  for (const s of nft.segments) segments.rules.push(...segmentRules(s, resolve, v6));
  if (segments.rules.length) forward.rules.push({ key: "segments", text: "jump segments" });

  for (const pf of nft.portForwards) {
    if (pf.v4) {
      const to = pf.toIp ?? (pf.toEndpoint ? input.endpointIps.get(pf.toEndpoint) : undefined);
      if (to !== undefined) {
        const key = `${pf.protocol}:${pf.hostIp === undefined ? "" : formatIp4(pf.hostIp) + ":"}${pf.hostPort}`;
        const match = `${pf.hostIp === undefined ? "fib daddr type local" : `ip daddr ${formatIp4(pf.hostIp)}`} ${pf.protocol} dport ${pf.hostPort}`;
        forwardRules(`port-forward:${key}`, match, `dnat ip to ${formatIp4(to)}:${pf.toPort}`, `ip daddr ${formatIp4(to)}`, pf);
      }
    }
    const to6 = pf.v6 ? (pf.toIp6 ?? (pf.toEndpoint ? input.endpointIps6?.get(pf.toEndpoint) : undefined)) : undefined;
    if (to6 !== undefined) {
      // No brackets in a key (the comment grammar): the host address and port are split by a space.
      const key = `${pf.protocol}:${pf.hostIp6 === undefined ? "" : `${formatIp6(pf.hostIp6)} `}${pf.hostPort}/6`;
      // `meta nfproto ipv6`: `fib daddr type local` alone would also match IPv4.
      const match = `${pf.hostIp6 === undefined ? "meta nfproto ipv6 fib daddr type local" : `ip6 daddr ${formatIp6(pf.hostIp6)}`} ${pf.protocol} dport ${pf.hostPort}`;
      forwardRules(`port-forward:${key}`, match, `dnat ip6 to [${formatIp6(to6)}]:${pf.toPort}`, `ip6 daddr ${formatIp6(to6)}`, pf);
    }
  }
  function forwardRules(key: string, match: string, dnat: string, daddr: string, pf: (typeof nft.portForwards)[number]) {
    natPre.rules.push({ key, text: `${match} ${dnat}`, source: pf.source });
    natOut.rules.push({ key, text: `${match} ${dnat}`, source: pf.source });
    forward.rules.push({ key, text: `${daddr} ${pf.protocol} dport ${pf.toPort} ct status dnat accept`, source: pf.source });
  }

  // Load balancers: DNAT like port forwards (from outside and from the host itself), their
  // backends' forward accepts before isolation, one verdict-map chain each.
  const lbs = lbChains(
    nft.loadBalancers,
    (lb, b) => {
      if (b.endpoint === undefined) return lb.family === 4 ? formatIp4(b.ip!) : formatIp6(b.ip6!);
      const a = lb.family === 4 ? input.endpointIps.get(b.endpoint) : input.endpointIps6?.get(b.endpoint);
      return a === undefined ? undefined : typeof a === "number" ? formatIp4(a) : formatIp6(a);
    },
    new Set(nft.lbDown),
  );
  for (const r of lbs.nat) {
    natPre.rules.push(r);
    natOut.rules.push(r);
  }
  forward.rules.push(...lbs.forward);
  const lbChainList: NftChain[] = lbs.chains.map((c) => ({ name: c.name, rules: c.rules }));

  // Isolation, no-internet and NAT as a handful of rules over sets: the rule count (and the
  // cost of every read and write of the table) does not grow with the number of networks.
  // `iifname . oifname != @same_bridge` exempts traffic within one bridge (br_netfilter).
  const named = (name: string, list: NetworkIntent[]) => ({
    name,
    decl: ["type ifname"],
    elements: list.map((n) => nftIfname(n.bridge)).sort(),
    dynamic: false,
  });
  const isolated = networks.filter((n) => n.isolated);
  const noInternet = networks.filter((n) => !n.internet);
  const internet = networks.filter((n) => n.internet);
  // IPv4 out but not IPv6 (`ipv6.internet = false`): IPv6's own drop (below) needs same_bridge too.
  const no6 = internet.filter((n) => n.v6 && !n.v6.internet);
  if (isolated.length || noInternet.length || no6.length)
    sets.push({
      name: "same_bridge",
      decl: ["type ifname . ifname"],
      elements: networks.map((n) => `${nftIfname(n.bridge)} . ${nftIfname(n.bridge)}`).sort(),
      dynamic: false,
    });
  if (isolated.length) {
    sets.push(named("isolated", isolated));
    forward.rules.push({
      key: "isolation-out",
      text: "iifname @isolated oifname @bridges iifname . oifname != @same_bridge counter drop",
      source: isolated[0]!.source,
    });
    forward.rules.push({
      key: "isolation-in",
      text: "oifname @isolated iifname @bridges iifname . oifname != @same_bridge counter drop",
      source: isolated[0]!.source,
    });
  }
  // IPv6 reaching out where IPv4 does not: accepted before IPv4's no-internet drop.
  const only6 = noInternet.filter((n) => n.v6?.internet);
  if (only6.length) {
    sets.push(named("internet6_only", only6));
    forward.rules.push({ key: "internet6-only", text: "meta nfproto ipv6 iifname @internet6_only accept", source: only6[0]!.source });
  }
  if (noInternet.length) {
    sets.push(named("no_internet", noInternet));
    forward.rules.push({ key: "no-internet", text: "iifname @no_internet iifname . oifname != @same_bridge counter drop", source: noInternet[0]!.source });
  }
  // IPv6's drop before the internet accept.
  if (no6.length) {
    sets.push(named("no_internet6", no6));
    forward.rules.push({
      key: "no-internet6",
      text: "meta nfproto ipv6 iifname @no_internet6 iifname . oifname != @same_bridge counter drop",
      source: no6[0]!.source,
    });
  }
  if (internet.length) {
    sets.push(named("internet", internet));
    sets.push({ name: "internet_nets", decl: ["type ipv4_addr", "flags interval"], elements: mergeCidrs(internet.map((n) => n.subnet)), dynamic: false });
    forward.rules.push({ key: "internet", text: "iifname @internet accept", source: internet[0]!.source });
    // Traffic to another bolt network keeps its source address; everything else leaving is NATed.
    natPost.rules.push({ key: "masquerade", text: "ip saddr @internet_nets oifname != @bridges masquerade", source: internet[0]!.source });
  }
  // NAT66 for `ipv6.internet = "masquerade"`; "routed" forwards with the endpoints' own addresses.
  const masq6 = nets6.filter((n) => n.v6!.internet === "masquerade");
  if (masq6.length) {
    sets.push({ name: "internet_nets6", decl: ["type ipv6_addr", "flags interval"], elements: mergeCidrs6(masq6.map((n) => n.v6!.subnet)), dynamic: false });
    natPost.rules.push({ key: "masquerade6", text: "ip6 saddr @internet_nets6 oifname != @bridges masquerade", source: masq6[0]!.source });
  }

  const traffic = chain("traffic");
  traffic.rules.push(...trafficRules(nft.traffic ?? [], input.endpointIps, input.endpointIps6 ?? new Map()));
  if (traffic.rules.length) manglePost.rules.unshift({ key: "traffic", text: "jump traffic" });

  const chains = [
    rawPre,
    manglePre,
    mangleOut,
    input_,
    forward,
    ddos,
    firewall,
    meshAcl,
    segments,
    ...lbChainList,
    natPre,
    natOut,
    natPost,
    manglePost,
    traffic,
  ].filter((c) => c.rules.length);
  return { sets, chains };
}

/**
 * A routing policy's mark: its bits only (`and` keeps every other bit of the packet's mark, so
 * marks other tools set survive), on the packets the policy matches.
 */
function policyMark(p: PolicyIntent): string {
  const ip = p.family === 6 ? "ip6" : "ip";
  const m: string[] = [];
  if (p.saddr) m.push(`${ip} saddr ${p.saddr}`);
  if (p.daddr) m.push(`${ip} daddr ${p.daddr}`);
  if (!p.saddr && !p.daddr) m.push(`meta nfproto ${p.family === 6 ? "ipv6" : "ipv4"}`);
  if (p.protocol === "tcp" || p.protocol === "udp") {
    if (!p.sport && !p.dport) m.push(`meta l4proto ${p.protocol}`);
    if (p.sport) m.push(`${p.protocol} sport ${ports(p.sport)}`);
    if (p.dport) m.push(`${p.protocol} dport ${ports(p.dport)}`);
  } else if (p.protocol === "icmp") m.push(`meta l4proto ${p.family === 6 ? "ipv6-icmp" : "icmp"}`);
  const keep = (~POLICY_MARK.mask >>> 0).toString(16).padStart(8, "0");
  return `${m.join(" ")} meta mark set meta mark and 0x${keep} or 0x${p.mark!.toString(16)}`;
}

/**
 * ACLs on the mesh interface: first match wins, then everything else is dropped. Each rule
 * and destination becomes the nft rules that match exactly what acl.ts `matches` says: an
 * accept rule's ICMP (and ICMPv6) by addresses alone, ports only for the ported protocols,
 * the rule's other protocols (its own or Tailscale's default tcp/udp/icmp/icmpv6) by protocol.
 * Addresses of both families: an `ip` rule for the IPv4 side and an `ip6` one for the IPv6
 * side (keys `…:v6`); a rule with "*" on both sides matches either family at once.
 */
function aclRules(acls: CompiledAcl[], gw: string): NftRule[] {
  const rules: NftRule[] = [{ key: "established", text: "ct state established,related accept" }];
  const set = (xs: string[]) => (xs.length === 1 ? xs[0]! : `{ ${xs.join(", ")} }`);
  acls.forEach((a, i) => {
    const verdict = a.action === "accept" ? "accept" : "drop";
    a.dst.forEach((d, j) => {
      const families: { v: "4" | "6" | "any"; m: string[] }[] = [];
      if (a.src === "any" && d.addrs === "any" && d.addrs6 === "any") families.push({ v: "any", m: [] });
      else {
        const side = (v: "4" | "6", src: unknown[] | "any", dst: unknown[] | "any", text: (x: never[]) => string, kw: string) => {
          if ((src !== "any" && !src.length) || (dst !== "any" && !dst.length)) return;
          const m: string[] = [];
          // (never both "any" here: "*" is "any" in both families, handled above)
          if (src !== "any") m.push(`${kw} saddr ${text(src as never[])}`);
          if (dst !== "any") m.push(`${kw} daddr ${text(dst as never[])}`);
          families.push({ v, m });
        };
        side("4", a.src, d.addrs, addrSet as (x: never[]) => string, "ip");
        side("6", a.src6, d.addrs6, addrSet6 as (x: never[]) => string, "ip6");
      }
      for (const { v, m } of families) {
        const base = m.length ? `${m.join(" ")} ` : "";
        const key = `acl:${i}:${j}${v === "6" ? ":v6" : ""}`;
        // The ICMP of this family (both when the rule is family-agnostic).
        const icmps = v === "4" ? ["icmp"] : v === "6" ? ["ipv6-icmp"] : ICMPS;
        const icmpByAddr = a.action === "accept";
        if (icmpByAddr) rules.push({ key: `${key}:icmp`, text: `${base}meta l4proto ${set(icmps)} counter accept` });
        if (a.protos === "any") {
          if (d.ports === "any") rules.push({ key, text: `${base}counter ${verdict}` });
          else {
            rules.push({ key, text: `${base}meta l4proto ${set(PORTED)} th dport ${portSet(d.ports)} counter ${verdict}` });
            rules.push({ key: `${key}:other`, text: `${base}meta l4proto != ${set(PORTED)} counter ${verdict}` });
          }
          continue;
        }
        // An ICMP of the other family never matches here: left out.
        const protos = a.protos.filter((p) => !(ICMPS.includes(p) && (icmpByAddr || !icmps.includes(p))));
        const ported = protos.filter((p) => PORTED.includes(p));
        const other = protos.filter((p) => !PORTED.includes(p));
        if (d.ports === "any" && protos.length) rules.push({ key, text: `${base}meta l4proto ${set(protos)} counter ${verdict}` });
        else {
          if (ported.length) rules.push({ key, text: `${base}meta l4proto ${set(ported)} th dport ${portSet(d.ports)} counter ${verdict}` });
          if (other.length) rules.push({ key: `${key}:other`, text: `${base}meta l4proto ${set(other)} counter ${verdict}` });
        }
      }
    });
  });
  rules.push({ key: "default-deny", text: `iifname ${gw} counter drop` });
  return rules;
}

function portSet(ports: [number, number][] | "any"): string {
  if (ports === "any") return "0-65535";
  const txt = ports.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}-${hi}`));
  return txt.length === 1 ? txt[0]! : `{ ${txt.join(", ")} }`;
}

function verdict(action: FirewallRuleIntent["action"], protocol: string): string {
  if (action === "allow") return "accept";
  if (action === "deny") return "drop";
  return protocol === "tcp" ? "reject with tcp reset" : "reject";
}

function firewallRules(r: FirewallRuleIntent, resolve: (a: AddrRef, fam: Fam) => string | undefined, v6: boolean): NftRule[] {
  const refs = [
    [r.saddr, "saddr"],
    [r.daddr, "daddr"],
  ] as const;
  const byAddr = refs.some(([ref]) => ref && ref.kind !== "any");
  // No address: one rule for both families (ICMP then means both ICMPs).
  if (!byAddr) return firewallRule(r, [], undefined, v6);
  return ([4, 6] as const).flatMap((fam) => {
    if (fam === 6 && !v6) return [];
    const m: string[] = [];
    for (const [ref, dir] of refs) {
      if (!ref) continue;
      const e = resolve(ref, fam);
      if (e === undefined) return [];
      if (e) m.push(`${FAM[fam].ip} ${dir} ${e}`);
    }
    return firewallRule(r, m, fam, v6);
  });
}

/** One family's rule (or the family-agnostic one, `fam` undefined) after its address matches `addrs`. */
function firewallRule(r: FirewallRuleIntent, addrs: string[], fam: Fam | undefined, v6: boolean): NftRule[] {
  const m: string[] = [];
  if (r.protocol === "tcp" || r.protocol === "udp") {
    if (!r.sport && !r.dport) m.push(`meta l4proto ${r.protocol}`);
    if (r.sport) m.push(`${r.protocol} sport ${ports(r.sport)}`);
    if (r.dport) m.push(`${r.protocol} dport ${ports(r.dport)}`);
  } else if (r.protocol === "icmp") m.push(`meta l4proto ${icmpOf(fam, v6)}`);
  m.push(...addrs);
  const pre = m.length ? `${m.join(" ")} ` : "";
  const log = r.log ? `log prefix "bolt ${nftName(r.name)}: " ` : "";
  const base = { source: r.source };
  const sfx = fam ? FAM[fam].suffix : "";
  if (r.rate && r.action === "allow") {
    // Accept up to the rate; what is over it is dropped by the rule after.
    return [
      { ...base, key: `rule:${r.name}${sfx}`, text: `${pre}limit rate ${r.rate.pps}/second burst ${r.rate.burst} packets ${log}counter accept` },
      { ...base, key: `rule:${r.name}:over-rate${sfx}`, text: `${pre}counter drop` },
    ];
  }
  const limit = r.rate ? `limit rate over ${r.rate.pps}/second burst ${r.rate.burst} packets ` : "";
  return [{ ...base, key: `rule:${r.name}${sfx}`, text: `${pre}${limit}${log}counter ${verdict(r.action, r.protocol)}` }];
}

/** "icmp" in a rule: the family's ICMP, or both when the rule serves both and IPv6 is in use. */
function icmpOf(fam: Fam | undefined, v6: boolean): string {
  if (fam) return FAM[fam].icmp;
  return v6 ? "{ icmp, ipv6-icmp }" : "icmp";
}

function ports(p: [number, number]): string {
  return p[0] === p[1] ? String(p[0]) : `${p[0]}-${p[1]}`;
}

/** A segment's policies: "from X" matches traffic X → members, "to X" members → X; one rule per family that has addresses. */
function segmentRules(s: SegmentIntent, resolve: (a: AddrRef, fam: Fam) => string | undefined, v6: boolean): NftRule[] {
  return ([4, 6] as const).flatMap((fam) => {
    if (fam === 6 && !v6) return [];
    const members = resolve({ kind: "segment", name: s.name }, fam);
    if (!members) return [];
    const ip = FAM[fam].ip;
    return s.policies.flatMap((p, i) => {
      const other = resolve(refOf(p.target, s), fam);
      if (other === undefined) return [];
      const proto =
        p.protocol === "all" ? "" : p.ports ? `${p.protocol} dport ${ports(p.ports)} ` : `meta l4proto ${p.protocol === "icmp" ? FAM[fam].icmp : p.protocol} `;
      const [src, dst] = p.direction === "from" ? [other, members] : [members, other];
      const text = `${src ? `${ip} saddr ${src} ` : ""}${ip} daddr ${dst} ${proto}counter ${verdict(p.action, p.protocol)}`;
      return [{ key: `segment:${s.name}:${i}${FAM[fam].suffix}`, text, source: p.source }];
    });
  });
}

function refOf(target: string, s: SegmentIntent): AddrRef {
  if (target === "external") return { kind: "external" };
  if (target === "any") return { kind: "any" };
  if (target.includes(":")) return { kind: "cidr6", cidr: parseCidr6(target)! };
  if (/^[0-9.]+(\/\d+)?$/.test(target)) return { kind: "cidr", cidr: parseCidr4(target.includes("/") ? target : `${target}/32`)! };
  return { kind: "segment", name: target === s.name ? s.name : target };
}

/**
 * An address match of one family as nft text: "" for any, a literal or anonymous set for
 * names, `!= @bolt_nets` (`@bolt_nets6`) for external; undefined when a reference has nothing
 * of that family (the rule is skipped for it: an IPv4 CIDR never matches an IPv6 packet).
 */
function addrExpr(r: AddrRef, input: CompileInput, segments: SegmentIntent[], fam: Fam): string | undefined {
  if (r.kind === "any") return "";
  if (r.kind === "external") return fam === 4 ? "!= @bolt_nets" : "!= @bolt_nets6";
  if (r.kind === "cidr") return fam === 4 ? cidrText(r.cidr) : undefined;
  if (r.kind === "cidr6") return fam === 6 ? cidrText6(r.cidr) : undefined;
  const nets = new Map(input.networks.map((n) => [n.name, n]));
  const ips6 = input.endpointIps6 ?? new Map<string, bigint>();
  const addrs: string[] = [];
  const addName = (name: string) => {
    const n = nets.get(name);
    if (fam === 4) {
      if (n) addrs.push(formatCidr4(n.subnet));
      const ip = input.endpointIps.get(name);
      if (ip !== undefined) addrs.push(formatIp4(ip));
    } else {
      if (n?.v6) addrs.push(formatCidr6(n.v6.subnet));
      const ip = ips6.get(name);
      if (ip !== undefined) addrs.push(formatIp6(ip));
    }
  };
  if (r.kind === "segment") {
    const seg = segments.find((s) => s.name === r.name);
    if (seg) {
      const names = [...(seg.endpointsOnly ? [] : nets.keys()), ...input.endpointIps.keys(), ...(seg.endpointsOnly ? ips6.keys() : [])];
      for (const g of seg.members) for (const name of names) if (globMatch(g, name)) addName(name);
    } else addName(r.name);
  } else addName(r.name);
  const uniq = [...new Set(addrs)];
  if (!uniq.length) return undefined;
  return uniq.length === 1 ? uniq[0] : `{ ${uniq.join(", ")} }`;
}

function cidrText(c: Cidr4): string {
  return c.prefix === 32 ? formatIp4(c.network) : formatCidr4(c);
}

function cidrText6(c: Cidr6): string {
  return c.prefix === 128 ? formatIp6(c.network) : formatCidr6(c);
}

/** Whether anything in the config is IPv6: a dual-stack network, an IPv6 CIDR or blocklist entry, an IPv6 port forward. */
function uses6(input: CompileInput): boolean {
  const { nft, networks } = input;
  const ref6 = (r?: AddrRef) => r?.kind === "cidr6";
  return (
    networks.some((n) => n.v6) ||
    nft.portForwards.some((p) => p.v6) ||
    nft.rules.some((r) => ref6(r.saddr) || ref6(r.daddr)) ||
    nft.segments.some((s) => s.policies.some((p) => p.target.includes(":"))) ||
    !!nft.ddos?.blocklists.some((b) => b.cidrs6.length)
  );
}

/** The DDoS limits for IPv6 sources, per /64, in sets of their own (a set holds one address type). */
function ddos6(d: NonNullable<NftIntent["ddos"]>): NftRule[] {
  const rules: NftRule[] = [];
  const limit = (set: string, rate: number, burst: number) => `update @${set} { ${SRC6} limit rate over ${rate}/second burst ${burst} packets } counter drop`;
  if (d.synFlood) rules.push({ key: "syn-flood/6", text: `tcp flags & (fin | syn | rst | ack) == syn ${limit("ddos_syn6", 50, 100)}`, source: d.source });
  if (d.connRate) rules.push({ key: "connection-rate/6", text: `ct state new ${limit("ddos_conn6", d.connRate, d.connRate)}`, source: d.source });
  if (d.pktRate) rules.push({ key: "packet-rate/6", text: limit("ddos_pkt6", d.pktRate, d.pktRate), source: d.source });
  return rules;
}

export function globMatch(glob: string, name: string): boolean {
  const re = new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
  return re.test(name);
}

export { mergeCidrs };
