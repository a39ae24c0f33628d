import type { SourcePos } from "../../src/core/diagnostics.js";
import { formatCidr4, parseCidr4 } from "../../src/core/ipv4.js";
import { formatCidr6, parseCidr6 } from "../../src/core/ipv6.js";
import { portRange } from "../../src/core/ports.js";
import { fragment, fragmentKey } from "../../src/core/intent.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import type { LoadedFile } from "../../src/config/load.js";
import { pointer } from "../../src/config/positions.js";
import { deriveIfname, ifnameProblem } from "../../src/config/names.js";
import { NETWORKS } from "../network/intent.js";
import { ENDPOINTS, endpointIfname } from "../endpoint/intent.js";
import type { EndpointIntent } from "../endpoint/intent.js";
import type { NetworkIntent } from "../network/intent.js";
import { parseRate, tcRate } from "./rate.js";
import { DSCP_NAMES, parseDscp } from "./dscp.js";

/**
 * Traffic control, the kernel half of the seeds' QoS: egress HTB trees (`tc qdisc … htb`) on
 * the devices whose egress bolt shapes, ifb devices for the other direction, and
 * `[[traffic.rules]]` whose nft rules (in bolt's table, reconcilers/nft/traffic.ts) set
 * `meta priority` to a class id of the tree: HTB classifies by skb->priority when it names one
 * of its classes, so no tc filter is needed and one rule serves every shaped device (every
 * tree uses the same major b017: and the same minor per rule).
 */
export const TC = {
  /** root qdisc major of every bolt tree: recognisably bolt's from `tc qdisc show` alone */
  major: "b017",
  root: 1,
  defaultMinor: 2,
  ruleMinor: 0x10,
  /** the ifb redirect filter's preference on a device's clsact ingress (0xb017) */
  redirectPref: 45079,
  /** a leaf queue long enough for a TCP window at the shaped rate (ifb's txqueuelen is 32) */
  leafLimit: 1000,
};

export const PRIORITIES = { critical: 0, gaming: 1, normal: 2, bulk: 3 } as const;
export type Priority = keyof typeof PRIORITIES;
const MAX_RULES = 1000;

export interface TrafficMatch {
  /** tcp, udp, both ("port:" patterns) or icmp (echo of either family) */
  protocols?: ("tcp" | "udp" | "icmp")[];
  ports?: [number, number];
  /** addresses: to them (daddr, dport) or from them (saddr, sport) */
  cidrs4: string[];
  cidrs6: string[];
  /** endpoints by name, resolved to their (possibly leased) addresses by the nft compiler */
  endpoints: string[];
  dscp?: number;
}

export interface TrafficRuleIntent {
  index: number;
  /** class minor on every tree: TC.ruleMinor + index */
  minor: number;
  label: string;
  priority: Priority;
  rate?: number;
  ceil?: number;
  match: TrafficMatch;
  setDscp?: number;
  /** expanded from a preset (enable_gaming_optimizations): shown as such in the plan */
  preset?: string;
  source: SourcePos;
}

/** An egress HTB tree on a device of the target namespace. */
export interface ShaperIntent {
  dev: string;
  /** bytes/s: the root class's rate and ceil */
  rate: number;
  /** a device bolt does not create ([traffic] interfaces): it must exist */
  external?: boolean;
  /** whether [[traffic.rules]] get classes here (not on ifbs: packets reach an ifb before netfilter sets a priority) */
  rules: boolean;
  why: string;
  source: SourcePos;
}

/** The other direction of a device: its clsact ingress redirected to an ifb whose egress is shaped. */
export interface IfbIntent {
  dev: string;
  ifb: string;
  why: string;
  source: SourcePos;
}

export interface TrafficIntent {
  shapers: ShaperIntent[];
  ifbs: IfbIntent[];
  rules: TrafficRuleIntent[];
  defaultPriority: Priority;
}

export const TRAFFIC = fragmentKey<TrafficIntent>("tc", () => ({ shapers: [], ifbs: [], rules: [], defaultPriority: "normal" }));

type Obj = Record<string, unknown>;

/** `enable_gaming_optimizations = true`: the game ports the firewall presets know, in the gaming class, DSCP EF (46). */
export const GAMING_QOS: { name: string; protocol: "tcp" | "udp"; ports: [number, number] }[] = [
  { name: "gaming-source-engine", protocol: "udp", ports: [27015, 27030] },
  { name: "gaming-unreal", protocol: "udp", ports: [7777, 7784] },
  { name: "gaming-minecraft", protocol: "tcp", ports: [25565, 25565] },
];

/** Seed pattern kinds the kernel cannot match: accepted, said, never silently dropped. */
const UNMATCHABLE = new Set(["steam_appid", "process", "app"]);

/** The ifb that carries DEV's ingress: "ifb-" + the device when it fits, else a hashed name. */
export function ifbName(dev: string): string {
  return deriveIfname("ifb-", dev);
}

export const trafficIntent: IntentHooks = {
  build(files: LoadedFile[], ctx: IntentContext): TrafficIntent {
    const out: TrafficIntent = { shapers: [], ifbs: [], rules: [], defaultPriority: "normal" };
    const networks = fragment(ctx.intent, NETWORKS);
    const endpoints = fragment(ctx.intent, ENDPOINTS);
    const egress = (dev: string, rate: number, rules: boolean, why: string, source: SourcePos, external?: boolean) => {
      const first = [...out.shapers, ...out.ifbs.map((i) => ({ ...i, dev: i.ifb }))].find((s) => s.dev === dev);
      if (first) return ctx.err(`${why}: ${dev}'s egress is already shaped by ${first.why}`, source);
      out.shapers.push({ dev, rate, rules, why, source, ...(external ? { external } : {}) });
    };
    const ingress = (dev: string, rate: number, why: string, source: SourcePos) => {
      const ifb = ifbName(dev);
      egress(ifb, rate, false, why, source);
      out.ifbs.push({ dev, ifb, why, source });
    };
    for (const f of files) {
      if (f.kind !== "boltfile") continue;
      const at = (...p: (string | number)[]) => f.positions.value(pointer(p));
      // A network's view: ingress = into the network (the bridge's egress), egress = out of it (the bridge's ingress, via an ifb).
      for (const [name, raw] of Object.entries((f.data.networks ?? {}) as Record<string, Obj>)) {
        if (raw.bandwidth === undefined) continue;
        const n = networks.find((x) => x.name === name);
        if (!n) continue;
        const bw = directions(raw.bandwidth, (k) => at("networks", name, "bandwidth", ...k), `network "${name}"`, ctx);
        if (bw.ingress) egress(n.bridge, bw.ingress.rate, true, `network "${name}" bandwidth (ingress)`, bw.ingress.source);
        if (bw.egress) ingress(n.bridge, bw.egress.rate, `network "${name}" bandwidth (egress)`, bw.egress.source);
      }
      // An endpoint's view, as the CNI bandwidth plugin's: ingress = what it receives (the host-side
      // device's egress), egress = what it sends (the host-side device's ingress, via an ifb). The
      // endpoint's own namespace is the tenant's: a shaper there could be removed from inside.
      ((f.data.endpoints ?? []) as Obj[]).forEach((raw, i) => {
        if (raw.bandwidth === undefined) return;
        const e = endpoints.find((x) => x.name === raw.name);
        if (!e) return;
        const dev = endpointIfname(e);
        const bw = directions(raw.bandwidth, (k) => at("endpoints", i, "bandwidth", ...k), `endpoint "${e.name}"`, ctx);
        if (bw.ingress) egress(dev, bw.ingress.rate, true, `endpoint "${e.name}" bandwidth (ingress)`, bw.ingress.source);
        if (bw.egress) ingress(dev, bw.egress.rate, `endpoint "${e.name}" bandwidth (egress)`, bw.egress.source);
      });
      const traffic = (f.data.traffic ?? {}) as Obj;
      if (typeof traffic.default_priority === "string") out.defaultPriority = traffic.default_priority as Priority;
      ((traffic.interfaces ?? []) as Obj[]).forEach((raw, i) => {
        const dev = String(raw.name);
        const problem = ifnameProblem(dev);
        if (problem) return ctx.err(`traffic interface: ${problem}`, at("traffic", "interfaces", i, "name"));
        const rate = rateAt(raw.rate, at("traffic", "interfaces", i, "rate"), `traffic interface "${dev}"`, ctx);
        if (rate !== undefined) egress(dev, rate, true, `[traffic] interface "${dev}"`, at("traffic", "interfaces", i), true);
      });
      ((traffic.rules ?? []) as Obj[]).forEach((raw, i) => {
        const r = rule(raw, (k) => at("traffic", "rules", i, k), f.positions.key(pointer(["traffic", "rules", i])), out.rules.length, ctx, networks, endpoints);
        if (r) out.rules.push(r);
      });
      const netw = (f.data.networking ?? {}) as Obj;
      if (netw.enable_gaming_optimizations === true) {
        const source = f.positions.value(pointer(["networking", "enable_gaming_optimizations"]));
        for (const g of GAMING_QOS)
          out.rules.push({
            index: out.rules.length,
            minor: TC.ruleMinor + out.rules.length,
            label: `${g.protocol}:${g.ports[0]}-${g.ports[1]}`,
            priority: "gaming",
            match: { protocols: [g.protocol], ports: g.ports, cidrs4: [], cidrs6: [], endpoints: [] },
            setDscp: DSCP_NAMES.ef,
            preset: `enable_gaming_optimizations (${g.name})`,
            source,
          });
      }
    }
    if (out.rules.length > MAX_RULES) ctx.err(`at most ${MAX_RULES} traffic rules (one HTB class each)`, out.rules[MAX_RULES]!.source);
    checkRates(out, ctx);
    if (out.rules.some((r) => !r.preset || r.setDscp === undefined) && out.rules.length && !out.shapers.some((s) => s.rules))
      ctx.diagnostics.push({
        severity: "warning",
        message:
          "traffic rules set a priority, but no device's egress is shaped ([traffic] interfaces, a network's or an endpoint's ingress bandwidth): the kernel queues nothing by it until one is",
        source: out.rules[0]!.source,
      });
    return out;
  },
  describe: (f) => {
    const t = f as TrafficIntent | undefined;
    return `${t?.shapers.length ?? 0} shaper(s), ${t?.rules.length ?? 0} traffic rule(s)`;
  },
};

type Dir = { rate: number; source: SourcePos };

/** `bandwidth = "10mbit"` (both directions) or `{ egress = …, ingress = … }`. */
function directions(raw: unknown, at: (k: string[]) => SourcePos, what: string, ctx: IntentContext): { egress?: Dir; ingress?: Dir } {
  if (typeof raw === "string") {
    const rate = rateAt(raw, at([]), `${what} bandwidth`, ctx);
    return rate === undefined ? {} : { egress: { rate, source: at([]) }, ingress: { rate, source: at([]) } };
  }
  const o = raw as Obj;
  const one = (k: "egress" | "ingress"): Dir | undefined => {
    if (o[k] === undefined) return undefined;
    const rate = rateAt(o[k], at([k]), `${what} bandwidth.${k}`, ctx);
    return rate === undefined ? undefined : { rate, source: at([k]) };
  };
  return { egress: one("egress"), ingress: one("ingress") };
}

function rateAt(raw: unknown, source: SourcePos, what: string, ctx: IntentContext): number | undefined {
  const r = parseRate(String(raw));
  if (r === undefined)
    ctx.err(
      `${what}: "${String(raw)}" is not a tc rate of at least 8bit`,
      source,
      'a number and a unit: bit, kbit, mbit, gbit or bps, kbps, mbps, e.g. "100mbit"',
    );
  return r;
}

function rule(
  raw: Obj,
  at: (k: string) => SourcePos,
  source: SourcePos,
  index: number,
  ctx: IntentContext,
  networks: NetworkIntent[],
  endpoints: EndpointIntent[],
): TrafficRuleIntent | undefined {
  const fail = (message: string, at: SourcePos, hint?: string): undefined => {
    ctx.err(message, at, hint);
    return undefined;
  };
  const match: TrafficMatch = { cidrs4: [], cidrs6: [], endpoints: [] };
  let label = "";
  if (typeof raw.pattern === "string") {
    label = raw.pattern;
    const i = raw.pattern.indexOf(":");
    const kind = raw.pattern.slice(0, i);
    const value = raw.pattern.slice(i + 1);
    const bad = (why: string) => fail(`traffic rule pattern "${raw.pattern}": ${why}`, at("pattern"));
    if (kind === "port" || kind === "tcp" || kind === "udp") {
      const ports = portRange(value);
      if (!ports) return bad(`"${value}" is not a port or a range N-M (1-65535)`);
      match.protocols = kind === "port" ? ["tcp", "udp"] : [kind];
      match.ports = ports;
    } else if (kind === "cidr") {
      const c4 = parseCidr4(value);
      const c6 = c4 ? undefined : parseCidr6(value);
      if (c4 && !c4.hostBits) match.cidrs4.push(formatCidr4(c4));
      else if (c6 && !c6.hostBits) match.cidrs6.push(formatCidr6(c6));
      else return bad(`"${value}" is not a CIDR without host bits`);
    } else if (kind === "network") {
      const n = networks.find((x) => x.name === value);
      if (!n) return bad(`no network "${value}" in this config`);
      match.cidrs4.push(formatCidr4(n.subnet));
      if (n.v6) match.cidrs6.push(formatCidr6(n.v6.subnet));
    } else if (kind === "endpoint") {
      if (!endpoints.some((e) => e.name === value)) return bad(`no endpoint "${value}" in this config`);
      match.endpoints.push(value);
    } else if (UNMATCHABLE.has(kind)) {
      ctx.diagnostics.push({
        severity: "warning",
        message: `accepted, not enforced: traffic rule pattern "${raw.pattern}" (the kernel sees addresses and ports, not applications); the rule gets no class`,
        source: at("pattern"),
      });
      return undefined;
    } else
      return fail(
        `traffic rule pattern "${raw.pattern}": unknown kind "${kind}"`,
        at("pattern"),
        "port:N[-M], tcp:…, udp:…, cidr:PREFIX, network:NAME or endpoint:NAME",
      );
  }
  if (raw.protocol !== undefined) {
    if (match.protocols && !(match.protocols.length === 2 && raw.protocol !== "icmp") && match.protocols[0] !== raw.protocol)
      return fail(`traffic rule: protocol "${String(raw.protocol)}" contradicts pattern "${label}"`, at("protocol"));
    match.protocols = [raw.protocol as "tcp" | "udp" | "icmp"];
  }
  if (raw.ports !== undefined) {
    const ports = portRange(String(raw.ports));
    if (!ports) return fail(`traffic rule: ports "${String(raw.ports)}" is not a port or a range N-M (1-65535)`, at("ports"));
    if (match.ports) return fail("traffic rule: ports given twice (pattern and ports)", at("ports"));
    match.ports = ports;
    match.protocols ??= ["tcp", "udp"];
  }
  if (match.ports && match.protocols?.includes("icmp")) return fail("traffic rule: ICMP has no ports", at("ports"));
  if (raw.network !== undefined) {
    const n = networks.find((x) => x.name === raw.network);
    if (!n) return fail(`traffic rule: no network "${String(raw.network)}" in this config`, at("network"));
    match.cidrs4.push(formatCidr4(n.subnet));
    if (n.v6) match.cidrs6.push(formatCidr6(n.v6.subnet));
  }
  if (raw.endpoint !== undefined) {
    if (!endpoints.some((e) => e.name === raw.endpoint)) return fail(`traffic rule: no endpoint "${String(raw.endpoint)}" in this config`, at("endpoint"));
    match.endpoints.push(String(raw.endpoint));
  }
  if (raw.match_dscp !== undefined) {
    match.dscp = parseDscp(raw.match_dscp);
    if (match.dscp === undefined) return fail(`traffic rule: match_dscp "${String(raw.match_dscp)}" is not a DSCP value`, at("match_dscp"), dscpHint);
  }
  let setDscp: number | undefined;
  if (raw.set_dscp !== undefined) {
    setDscp = parseDscp(raw.set_dscp);
    if (setDscp === undefined) return fail(`traffic rule: set_dscp "${String(raw.set_dscp)}" is not a DSCP value`, at("set_dscp"), dscpHint);
  }
  if (!match.protocols && !match.cidrs4.length && !match.cidrs6.length && !match.endpoints.length && match.dscp === undefined)
    return fail("traffic rule matches nothing: give a pattern or one of protocol, ports, network, endpoint, match_dscp", source);
  const rate = raw.rate === undefined ? undefined : rateAt(raw.rate, at("rate"), "traffic rule rate", ctx);
  const ceil = raw.bandwidth_limit === undefined ? undefined : rateAt(raw.bandwidth_limit, at("bandwidth_limit"), "traffic rule bandwidth_limit", ctx);
  if (rate !== undefined && ceil !== undefined && rate > ceil)
    return fail(`traffic rule: rate ${tcRate(rate)} is above its bandwidth_limit ${tcRate(ceil)} (HTB's ceil)`, at("rate"));
  label ||= describeMatch(match);
  return {
    index,
    minor: TC.ruleMinor + index,
    label,
    priority: (raw.priority as Priority | undefined) ?? "normal",
    rate,
    ceil,
    match,
    setDscp,
    source,
  };
}

const dscpHint = "0-63 or a name: ef, be, cs0-cs7, af11-af43";

function describeMatch(m: TrafficMatch): string {
  return [m.protocols?.join("+"), m.ports && `${m.ports[0]}-${m.ports[1]}`, ...m.endpoints, ...m.cidrs4, ...m.cidrs6, m.dscp !== undefined && `dscp ${m.dscp}`]
    .filter(Boolean)
    .join(" ");
}

/** HTB cannot guarantee more than its link: explicit rates must fit every tree they land in. */
function checkRates(t: TrafficIntent, ctx: IntentContext): void {
  const fixed = t.rules.reduce((s, r) => s + (r.rate ?? 0), 0);
  for (const s of t.shapers.filter((x) => x.rules)) {
    for (const r of t.rules)
      if (r.rate !== undefined && r.rate > s.rate)
        ctx.err(`traffic rule "${r.label}": rate ${tcRate(r.rate)} is above ${s.why}'s ${tcRate(s.rate)} on ${s.dev}`, r.source);
    if (fixed && fixed >= s.rate)
      ctx.err(
        `traffic rules guarantee ${tcRate(fixed)} in all, not less than ${s.why}'s ${tcRate(s.rate)} on ${s.dev}: nothing is left for the default class`,
        t.rules[0]!.source,
      );
  }
}
