import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { closest, distance } from "fastest-levenshtein";
import type { Diagnostic, SourcePos } from "../../src/core/diagnostics.js";
import { parseCidr4, parseIp4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { formatIp6, parseCidr6, parseIp6 } from "../../src/core/ipv6.js";
import type { Cidr6 } from "../../src/core/ipv6.js";
import type { LoadedFile } from "../../src/config/load.js";
import { fragment, fragmentKey } from "../../src/core/intent.js";
import type { IntentHooks } from "../../src/core/resource.js";
import { ENDPOINTS } from "../endpoint/intent.js";
import type { EndpointIntent } from "../endpoint/intent.js";
import { NETWORKS } from "../network/intent.js";
import type { NetworkIntent } from "../network/intent.js";
import { pointer } from "../../src/config/positions.js";
import { PolicyError, parsePolicy, portRange } from "./policy.js";
import type { Policy } from "./policy.js";
import { globMatch } from "./compile.js";
import { volantPolicies } from "./volant-policies.js";
import { loadBalancers } from "./lb-intent.js";
import { POLICIES } from "../rule/intent.js";
import { TRAFFIC } from "../tc/intent.js";
import type { TrafficRuleIntent } from "../tc/intent.js";
import type { PolicyIntent } from "../rule/intent.js";
import type { LoadBalancerIntent } from "./lb-intent.js";

/** What the firewall/NAT part of the config asks for, validated; compiled by compile.ts. */
export interface PortForwardIntent {
  hostPort: number;
  hostIp?: number;
  protocol: "tcp" | "udp";
  /** endpoint name, resolved to its (possibly leased) address at plan time */
  toEndpoint?: string;
  toIp?: number;
  /** IPv6: `host_ip = "fd00::1"`, `to = "[fd20::10]:80"` */
  hostIp6?: bigint;
  toIp6?: bigint;
  toPort: number;
  /** the families it forwards: an endpoint on a dual-stack network gets both (like Docker with ip6tables) */
  v4: boolean;
  v6: boolean;
  source: SourcePos;
}

/** A source/destination reference: CIDR, bolt network, segment, or endpoint. */
export type AddrRef =
  | { kind: "cidr"; cidr: Cidr4 }
  | { kind: "cidr6"; cidr: Cidr6 }
  | { kind: "network" | "segment" | "endpoint"; name: string }
  | { kind: "external" }
  | { kind: "any" };

export interface FirewallRuleIntent {
  name: string;
  priority: number;
  action: "allow" | "deny" | "reject";
  protocol: "tcp" | "udp" | "icmp" | "all";
  sport?: [number, number];
  dport?: [number, number];
  saddr?: AddrRef;
  daddr?: AddrRef;
  rate?: { pps: number; burst: number };
  log: boolean;
  /** expanded from a preset (gaming_protection): shown as such in the plan */
  preset?: string;
  source: SourcePos;
}

export interface BlocklistIntent {
  name: string;
  path: string;
  cidrs: Cidr4[];
  cidrs6: Cidr6[];
  source: SourcePos;
}

export interface DdosIntent {
  synFlood: boolean;
  connRate?: number;
  pktRate?: number;
  blocklists: BlocklistIntent[];
  source: SourcePos;
}

export interface SegmentIntent {
  name: string;
  members: string[];
  policies: (Policy & { source: SourcePos; text: string })[];
  source: SourcePos;
  /** members name endpoints only (Volant's VM policies), never a network's whole subnet */
  endpointsOnly?: boolean;
}

export interface NftIntent {
  portForwards: PortForwardIntent[];
  rules: FirewallRuleIntent[];
  ddos?: DdosIntent;
  segments: SegmentIntent[];
  dockerResolution: boolean;
  /** mode = "intelligent": analyse foreign rulesets in plan */
  analyzeForeign: boolean;
  loadBalancers: LoadBalancerIntent[];
  /**
   * "LB/BACKEND-KEY" → false for backends the daemon's health check found down (external
   * input `load_balancer`, see src/watch/health.ts); absent: healthy.
   */
  lbDown: string[];
  /** [[routing.policies]] (the rule kind's fragment): each gets a mark set on matching packets */
  policies: PolicyIntent[];
  /** [[traffic.rules]] (the tc kind's fragment): each sets its HTB class as skb->priority */
  traffic: TrafficRuleIntent[];
}

type Obj = Record<string, unknown>;

/** Absent from an intent made for destroy: bolt's table goes. */
export const NFT = fragmentKey<NftIntent | undefined>("nft", () => undefined);

export const nftIntentHooks: IntentHooks = {
  build: (files, ctx) => {
    const out = nftIntent(files, fragment(ctx.intent, NETWORKS), fragment(ctx.intent, ENDPOINTS), ctx.diagnostics);
    const down = ctx.opts.external?.load_balancer as { down?: string[] } | undefined;
    out.lbDown = [...(down?.down ?? [])].sort();
    out.policies = fragment(ctx.intent, POLICIES).filter((p) => p.mark !== undefined);
    out.traffic = fragment(ctx.intent, TRAFFIC).rules;
    return out;
  },
};

/** Defaults of `ddos_protection = true` without a [firewall.ddos] table (visible in the plan). */
export const DDOS_DEFAULTS = { connRate: 100, pktRate: 10000 };
/** `gaming_protection = true`: rate-limited accepts for well-known game server ports. */
export const GAMING_PORTS: { name: string; protocol: "tcp" | "udp"; ports: [number, number]; pps: number }[] = [
  { name: "gaming-source-engine", protocol: "udp", ports: [27015, 27030], pps: 5000 },
  { name: "gaming-unreal", protocol: "udp", ports: [7777, 7784], pps: 5000 },
  { name: "gaming-minecraft", protocol: "tcp", ports: [25565, 25565], pps: 2000 },
];

export function nftIntent(files: LoadedFile[], networks: NetworkIntent[], endpoints: EndpointIntent[], diags: Diagnostic[]): NftIntent {
  const out: NftIntent = {
    portForwards: [],
    rules: [],
    segments: [],
    dockerResolution: false,
    analyzeForeign: false,
    loadBalancers: [],
    lbDown: [],
    policies: [],
    traffic: [],
  };
  const err = (message: string, source: SourcePos, hint?: string) => diags.push({ severity: "error", message, source, hint });
  const names = {
    networks: new Set(networks.map((n) => n.name)),
    endpoints: new Set(endpoints.map((e) => e.name)),
    segments: new Set<string>(),
  };
  // endpoint → whether its network is dual-stack (a port forward to it then covers both families)
  const v6Nets = new Set(networks.filter((n) => n.v6).map((n) => n.name));
  const dual = new Map(endpoints.map((e) => [e.name, v6Nets.has(e.network)]));
  for (const f of files) {
    const pos = (...parts: (string | number)[]) => f.positions.value(pointer(parts));
    const keyPos = (...parts: (string | number)[]) => f.positions.key(pointer(parts));
    if (f.kind === "boltfile") for (const s of (f.data.segments ?? []) as Obj[]) names.segments.add(String(s.name));
    const pfs =
      f.kind === "boltfile"
        ? ((f.data.port_forwards ?? []) as Obj[])
        : f.kind === "volantd"
          ? ((((f.data.networking ?? {}) as Obj).port_forwards ?? []) as Obj[])
          : [];
    const pfBase = f.kind === "volantd" ? ["networking", "port_forwards"] : ["port_forwards"];
    pfs.forEach((raw, i) => {
      const pf = portForward(raw, (k) => pos(...pfBase, i, k), keyPos(...pfBase, i), dual, err);
      if (pf) out.portForwards.push(pf);
    });
  }
  for (const f of files) {
    if (f.kind !== "boltfile") continue;
    const pos = (...parts: (string | number)[]) => f.positions.value(pointer(parts));
    const keyPos = (...parts: (string | number)[]) => f.positions.key(pointer(parts));
    const fw = (f.data.firewall ?? {}) as Obj;
    if (fw.docker_conflict_resolution === true) out.dockerResolution = true;
    if (fw.mode === "intelligent") out.analyzeForeign = true;
    ((fw.rules ?? []) as Obj[]).forEach((raw, i) => {
      const r = firewallRule(raw, (k) => pos("firewall", "rules", i, k), keyPos("firewall", "rules", i), names, err);
      if (r) out.rules.push(r);
    });
    if (fw.gaming_protection === true) {
      for (const g of GAMING_PORTS)
        out.rules.push({
          name: g.name,
          priority: 50,
          action: "allow",
          protocol: g.protocol,
          dport: g.ports,
          rate: { pps: g.pps, burst: g.pps },
          log: false,
          preset: "gaming_protection",
          source: keyPos("firewall", "gaming_protection"),
        });
    }
    const ddosRaw = fw.ddos as Obj | undefined;
    if (ddosRaw || fw.ddos_protection === true) {
      const src = ddosRaw ? keyPos("firewall", "ddos") : keyPos("firewall", "ddos_protection");
      const d: DdosIntent = {
        synFlood: ddosRaw ? ddosRaw.syn_flood_protection === true : true,
        connRate: ddosRaw ? (ddosRaw.connection_rate_limit as number | undefined) : DDOS_DEFAULTS.connRate,
        pktRate: ddosRaw ? (ddosRaw.packet_rate_limit as number | undefined) : DDOS_DEFAULTS.pktRate,
        blocklists: [],
        source: src,
      };
      ((ddosRaw?.blocklists ?? []) as string[]).forEach((p, i) => {
        const bl = loadBlocklist(f.path, p, i, pos("firewall", "ddos", "blocklists", i), diags);
        if (bl) d.blocklists.push(bl);
      });
      out.ddos = out.ddos ? { ...out.ddos, blocklists: [...out.ddos.blocklists, ...d.blocklists] } : d;
    }
    ((f.data.segments ?? []) as Obj[]).forEach((raw, i) => {
      const s = segment(raw, i, pos, keyPos, names, err, diags);
      if (s) out.segments.push(s);
    });
  }
  out.segments.push(
    ...volantPolicies(
      files,
      endpoints.map((e) => e.name),
      diags,
    ),
  );
  out.loadBalancers = loadBalancers(files, networks, endpoints, diags);
  dupCheck(out, err);
  return out;
}

function portForward(
  raw: Obj,
  pos: (k: string) => SourcePos,
  source: SourcePos,
  dual: Map<string, boolean>,
  err: (m: string, s: SourcePos, h?: string) => void,
): PortForwardIntent | undefined {
  const to = String(raw.to ?? "");
  const i = to.lastIndexOf(":");
  const target = to.slice(0, i);
  const port = portRange(to.slice(i + 1));
  if (i <= 0 || !port || port[0] !== port[1]) {
    err(`port forward: "to" must be "<endpoint>:<port>", "<ipv4>:<port>" or "[<ipv6>]:<port>" with a port 1-65535, got "${to}"`, pos("to"));
    return undefined;
  }
  const pf: PortForwardIntent = {
    hostPort: Number(raw.host_port),
    protocol: raw.protocol === "udp" ? "udp" : "tcp",
    toPort: port[0],
    v4: true,
    v6: false,
    source,
  };
  if (raw.host_ip !== undefined) {
    const h = String(raw.host_ip);
    if (h.includes(":")) pf.hostIp6 = parseIp6(h);
    else pf.hostIp = parseIp4(h);
    if (pf.hostIp === undefined && pf.hostIp6 === undefined) return void err(`port forward: host_ip "${h}" is not an IPv4 or IPv6 address`, pos("host_ip"));
  }
  if (!Number.isInteger(pf.hostPort) || pf.hostPort < 1 || pf.hostPort > 65535)
    return void err(`port forward: host_port ${String(raw.host_port)} is out of range 1-65535`, pos("host_port"));
  const bracket = /^\[([0-9A-Fa-f:.]+)\]$/.exec(target);
  const ip = parseIp4(target);
  if (bracket) {
    pf.toIp6 = parseIp6(bracket[1]!);
    if (pf.toIp6 === undefined) return void err(`port forward: "${bracket[1]}" is not an IPv6 address`, pos("to"));
    [pf.v4, pf.v6] = [false, true];
  } else if (target.includes(":")) return void err(`port forward: an IPv6 target is written in brackets, "[${target}]:${port[0]}"`, pos("to"));
  else if (ip !== undefined) pf.toIp = ip;
  else if (dual.has(target)) {
    pf.toEndpoint = target;
    pf.v6 = dual.get(target)!;
  } else {
    const names = [...dual.keys()];
    const guess = names.length ? closest(target, names) : undefined;
    return void err(
      `port forward: "${target}" is neither an IP address nor a defined endpoint`,
      pos("to"),
      guess && distance(guess, target) <= 3 ? `did you mean "${guess}"?` : undefined,
    );
  }
  // A host address picks one family; NAT between families (NAT46/64) is not something nftables' dnat does.
  if (pf.hostIp !== undefined) {
    if (!pf.v4)
      return void err(`port forward: host_ip ${String(raw.host_ip)} is IPv4 but "${to}" is IPv6 (nft cannot translate between families)`, pos("host_ip"));
    pf.v6 = false;
  }
  if (pf.hostIp6 !== undefined) {
    if (!pf.v6)
      return void err(
        `port forward: host_ip ${formatIp6(pf.hostIp6)} is IPv6 but "${target}" has no IPv6 address${pf.toEndpoint ? " (its network has no ipv6 subnet)" : ""}`,
        pos("host_ip"),
      );
    pf.v4 = false;
  }
  return pf;
}

function addrRef(v: unknown, names: { networks: Set<string>; endpoints: Set<string>; segments: Set<string> }): AddrRef | string | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  if (s === "any") return { kind: "any" };
  if (s === "external") return { kind: "external" };
  if (/^[0-9A-Fa-f:.]+(\/\d+)?$/.test(s) && s.includes(":")) {
    const c = parseCidr6(s);
    if (!c) return `"${s}" is not an IPv6 address or CIDR`;
    if (c.hostBits) return `"${s}" has host bits set`;
    return { kind: "cidr6", cidr: { network: c.network, prefix: c.prefix } };
  }
  if (/^[0-9.]+(\/\d+)?$/.test(s)) {
    const c = parseCidr4(s.includes("/") ? s : `${s}/32`);
    if (!c) return `"${s}" is not an IPv4 address or CIDR`;
    if (c.hostBits) return `"${s}" has host bits set`;
    return { kind: "cidr", cidr: c };
  }
  if (names.segments.has(s)) return { kind: "segment", name: s };
  if (names.networks.has(s)) return { kind: "network", name: s };
  if (names.endpoints.has(s)) return { kind: "endpoint", name: s };
  const all = [...names.segments, ...names.networks, ...names.endpoints];
  const guess = all.length ? closest(s, all) : undefined;
  return `"${s}" is not a CIDR, network, segment or endpoint${guess && distance(guess, s) <= 3 ? ` (did you mean "${guess}"?)` : ""}`;
}

function firewallRule(
  raw: Obj,
  pos: (k: string) => SourcePos,
  source: SourcePos,
  names: Parameters<typeof addrRef>[1],
  err: (m: string, s: SourcePos, h?: string) => void,
): FirewallRuleIntent | undefined {
  const name = String(raw.name);
  const protocol = (raw.protocol ?? "all") as FirewallRuleIntent["protocol"];
  const rule: FirewallRuleIntent = {
    name,
    priority: typeof raw.priority === "number" ? raw.priority : 1000,
    action: raw.action as FirewallRuleIntent["action"],
    protocol,
    log: raw.logging === true,
    source,
  };
  let bad = false;
  for (const [key, field] of [
    ["source_ports", "sport"],
    ["dest_ports", "dport"],
  ] as const) {
    if (raw[key] === undefined) continue;
    const r = portRange(String(raw[key]));
    if (!r) {
      err(`firewall rule "${name}": ${key} "${String(raw[key])}" is not a port 1-65535 or a range N-M with N <= M`, pos(key));
      bad = true;
    } else if (protocol !== "tcp" && protocol !== "udp") {
      err(`firewall rule "${name}": ${key} needs protocol tcp or udp (protocol is ${protocol})`, pos(key));
      bad = true;
    } else rule[field] = r;
  }
  for (const [key, field] of [
    ["source", "saddr"],
    ["destination", "daddr"],
  ] as const) {
    const r = addrRef(raw[key], names);
    if (typeof r === "string") {
      err(`firewall rule "${name}": ${key} ${r}`, pos(key));
      bad = true;
    } else if (r) rule[field] = r;
  }
  const rl = raw.rate_limit as Obj | undefined;
  if (rl) rule.rate = { pps: Number(rl.packets_per_second), burst: Number(rl.burst_size ?? rl.packets_per_second) };
  return bad ? undefined : rule;
}

function segment(
  raw: Obj,
  i: number,
  pos: (...p: (string | number)[]) => SourcePos,
  keyPos: (...p: (string | number)[]) => SourcePos,
  names: Parameters<typeof addrRef>[1],
  err: (m: string, s: SourcePos, h?: string) => void,
  diags: Diagnostic[],
): SegmentIntent | undefined {
  const name = String(raw.name);
  const members = [...((raw.members ?? []) as string[]), ...((raw.allowed_containers ?? []) as string[])];
  const s: SegmentIntent = { name, members, policies: [], source: keyPos("segments", i) };
  // A name that matches nothing is a typo; a segment that matches nothing at all would make
  // its policies, and every rule that names it, match nothing: silently gone. A glob that
  // matches nothing yet (endpoints to come) is only a warning.
  const known = [...names.networks, ...names.endpoints];
  let matched = false;
  for (const key of ["members", "allowed_containers"] as const) {
    ((raw[key] ?? []) as string[]).forEach((glob, k) => {
      if (known.some((n) => globMatch(glob, n))) {
        matched = true;
        return;
      }
      const guess = known.length ? closest(glob, known) : undefined;
      const hint =
        guess && distance(guess, glob) <= 3
          ? `did you mean "${guess}"?`
          : known.length
            ? `networks and endpoints: ${known.slice(0, 8).join(", ")}${known.length > 8 ? ", …" : ""}`
            : "define the networks and endpoints it groups";
      const at = pos("segments", i, key, k);
      if (/[*?]/.test(glob))
        diags.push({ severity: "warning", message: `segment "${name}": member "${glob}" matches no network or endpoint yet`, source: at, hint });
      else err(`segment "${name}": member "${glob}" matches no network or endpoint`, at, hint);
    });
  }
  if (!matched && !members.some((m) => !/[*?]/.test(m) && !known.includes(m)))
    err(
      `segment "${name}" matches no network or endpoint: its policies, and the rules that name it, would match nothing`,
      keyPos("segments", i),
      "list networks or endpoints (globs allowed) in members",
    );
  ((raw.network_policies ?? []) as string[]).forEach((text, j) => {
    const at = pos("segments", i, "network_policies", j);
    try {
      const p = parsePolicy(text);
      const ref = addrRef(p.target, names);
      if (typeof ref === "string") throw new PolicyError(`target ${ref}`, text.lastIndexOf(p.target));
      s.policies.push({ ...p, source: at, text });
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      // +1: the column of the opening quote is the value's position.
      err(`segment "${name}": policy "${text}": ${e.message}`, { ...at, col: at.col + 1 + e.column });
    }
  });
  return s;
}

function dupCheck(out: NftIntent, err: (m: string, s: SourcePos) => void) {
  // Per family: an IPv4 and an IPv6 forward of the same port are two different sockets.
  for (const fam of [4, 6] as const) {
    const seen = new Map<string, PortForwardIntent>();
    for (const pf of out.portForwards.filter((p) => (fam === 4 ? p.v4 : p.v6))) {
      const host = fam === 4 ? (pf.hostIp === undefined ? undefined : String(pf.hostIp)) : pf.hostIp6 === undefined ? undefined : String(pf.hostIp6);
      const k = `${pf.protocol}/${host ?? "*"}/${pf.hostPort}`;
      const wild = `${pf.protocol}/*/${pf.hostPort}`;
      const prev =
        seen.get(k) ??
        seen.get(wild) ??
        (host === undefined ? [...seen.entries()].find(([key]) => key.startsWith(`${pf.protocol}/`) && key.endsWith(`/${pf.hostPort}`))?.[1] : undefined);
      if (prev && prev !== pf)
        err(
          `port forward: ${pf.protocol} port ${pf.hostPort} is already forwarded${fam === 6 ? " for IPv6" : ""} (${prev.source.file}:${prev.source.line})`,
          pf.source,
        );
      else seen.set(k, pf);
    }
  }
  const rules = new Set<string>();
  for (const r of out.rules) {
    if (rules.has(r.name)) err(`firewall rule "${r.name}" is defined twice`, r.source);
    rules.add(r.name);
  }
  const segs = new Set<string>();
  for (const s of out.segments) {
    if (segs.has(s.name)) err(`segment "${s.name}" is defined twice`, s.source);
    segs.add(s.name);
  }
}

/** Blocklist files: one IPv4 or IPv6 address or CIDR a line, `#` comments; errors name the list's own line. */
export function loadBlocklist(configFile: string, path: string, index: number, at: SourcePos, diags: Diagnostic[]): BlocklistIntent | undefined {
  const full = resolve(dirname(configFile), path);
  let text: string;
  try {
    if (statSync(full).isDirectory()) throw new Error("is a directory");
    text = readFileSync(full, "utf8");
  } catch (e) {
    diags.push({
      severity: "error",
      message: `blocklist ${path}: cannot read ${full}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      source: at,
    });
    return undefined;
  }
  const cidrs: Cidr4[] = [];
  const cidrs6: Cidr6[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    const body = raw.replace(/#.*/, "").trim();
    if (!body) continue;
    if (body.includes(":")) {
      const c6 = parseCidr6(body);
      if (c6 && !c6.hostBits) {
        cidrs6.push({ network: c6.network, prefix: c6.prefix });
        continue;
      }
      diags.push({
        severity: "error",
        message: `"${body}" is not an IPv6 address or CIDR${c6?.hostBits ? " (host bits set)" : ""}`,
        source: { file: path, line: n + 1, col: raw.indexOf(body) + 1 },
      });
      if (diags.filter((d) => d.severity === "error").length > 20) break;
      continue;
    }
    const c = parseCidr4(body.includes("/") ? body : `${body}/32`);
    if (!c || c.hostBits) {
      diags.push({
        severity: "error",
        message: `"${body}" is not an IPv4 address or CIDR${c?.hostBits ? " (host bits set)" : ""}`,
        source: { file: path, line: n + 1, col: raw.indexOf(body) + 1 },
      });
      if (diags.filter((d) => d.severity === "error").length > 20) break;
      continue;
    }
    cidrs.push(c);
  }
  return { name: `bl${index}`, path, cidrs, cidrs6, source: at };
}
