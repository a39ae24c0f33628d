import { closest, distance } from "fastest-levenshtein";
import type { Diagnostic, SourcePos } from "../core/diagnostics.js";
import { broadcastOf, contains, formatCidr4, formatIp4, parseCidr4, parseIp4 } from "../core/ipv4.js";
import type { Cidr4 } from "../core/ipv4.js";
import type { LoadedFile } from "./load.js";
import type { EndpointIntent, Intent, NetworkIntent, SysctlIntent } from "./model.js";
import { deriveIfname, ifnameProblem } from "./names.js";
import { pointer } from "./positions.js";
import { nftIntent } from "../reconcilers/nft/intent.js";
import type { NftIntent } from "../reconcilers/nft/intent.js";
import { wireguardIntent } from "../reconcilers/wireguard/intent.js";
import type { MeshIntent } from "../reconcilers/wireguard/intent.js";
import { runAclTests } from "../reconcilers/wireguard/acl.js";

type Obj = Record<string, unknown>;

/** Volant's documented bridge defaults (seed: Volant networking guide). */
const VOLANT_DEFAULTS = { name: "volant0", subnet: "192.168.127.0/24", gateway: "192.168.127.1", start: "192.168.127.100", end: "192.168.127.254" };

export interface NormalizeOptions {
  /** prepended to every endpoint namespace name (tests, job runners running many copies) */
  netnsPrefix?: string;
  /** not on the target host: missing key files are warnings */
  offline?: boolean;
  /** `bolt mesh test` reports acl_tests itself instead of as config errors */
  skipAclTests?: boolean;
}

/**
 * Semantic checks the schema cannot express (addresses, overlaps, references, kernel name
 * rules) and normalization into one Intent for all files. Pure: reads nothing but its input
 * (and the blocklist files it names).
 */
export function normalize(files: LoadedFile[], opts: NormalizeOptions = {}): { intent: Intent; diagnostics: Diagnostic[] } {
  const diags: Diagnostic[] = [];
  const networks: NetworkIntent[] = [];
  const endpoints: EndpointIntent[] = [];
  const sysctls: SysctlIntent[] = [];
  const err = (message: string, source: SourcePos, hint?: string) => diags.push({ severity: "error", message, source, hint });

  for (const f of files) {
    const pos = (...parts: (string | number)[]) => f.positions.value(pointer(parts));
    const keyPos = (...parts: (string | number)[]) => f.positions.key(pointer(parts));
    if (f.kind === "boltfile") {
      for (const [name, raw] of Object.entries((f.data.networks ?? {}) as Record<string, Obj>)) {
        const n = network(name, raw, (k) => pos("networks", name, k), keyPos("networks", name), err);
        if (n) networks.push(n);
      }
      ((f.data.endpoints ?? []) as Obj[]).forEach((raw, i) => {
        const e = endpoint(raw, (k) => pos("endpoints", i, k), keyPos("endpoints", i), opts.netnsPrefix ?? "", err);
        if (e) endpoints.push(e);
      });
      for (const [key, value] of Object.entries((f.data.sysctl ?? {}) as Obj)) {
        sysctls.push({ key, value: String(value), source: keyPos("sysctl", key) });
      }
    } else if (f.kind === "volantd") {
      const net = (f.data.networking ?? {}) as Obj;
      if ((net.mode ?? "bridge") === "bridge") {
        const b = (net.bridge ?? {}) as Obj;
        const range = (b.ip_range ?? {}) as Obj;
        const subnetGiven = typeof b.subnet === "string";
        // Volant reserves .1–.99 of its subnet; with a custom subnet and no range, use the whole subnet.
        const raw: Obj = {
          bridge: b.name ?? VOLANT_DEFAULTS.name,
          subnet: b.subnet ?? VOLANT_DEFAULTS.subnet,
          gateway: b.gateway ?? (subnetGiven ? undefined : VOLANT_DEFAULTS.gateway),
          ip_range: b.ip_range ? range : subnetGiven ? undefined : { start: VOLANT_DEFAULTS.start, end: VOLANT_DEFAULTS.end },
        };
        const at = (k: string) => {
          const map: Record<string, (string | number)[]> = { bridge: ["networking", "bridge", "name"], subnet: ["networking", "bridge", "subnet"], gateway: ["networking", "bridge", "gateway"], ip_range: ["networking", "bridge", "ip_range"] };
          return pos(...(map[k] ?? ["networking", "bridge"]));
        };
        const n = network("volant", raw, at, keyPos("networking", "bridge"), err);
        if (n) networks.push(n);
      }
    }
  }

  crossChecks(networks, endpoints, sysctls, err);
  const nft = nftIntent(files, networks, endpoints, diags);
  const { wireguard, mesh } = wireguardIntent(files, diags, { offline: opts.offline });
  impliedForwarding(networks, nft, mesh, sysctls, diags);
  // Exit node in use: rp_filter must see the restored fwmark (see the nft mangle chains).
  if (mesh?.useExitNode && !sysctls.some((s) => s.key === "net.ipv4.conf.all.src_valid_mark")) sysctls.push({ key: "net.ipv4.conf.all.src_valid_mark", value: "1", source: mesh.source, implied: true });
  if (mesh && !opts.skipAclTests) meshAclTests(mesh, diags);
  return { intent: { networks, endpoints, sysctls, files: files.map((f) => f.path), nft, wireguard, mesh }, diagnostics: diags };
}

/** `[[acl_tests]]` are evaluated offline; a failing assertion blocks apply like a config error. */
function meshAclTests(mesh: MeshIntent, diags: Diagnostic[]) {
  for (const f of runAclTests(mesh, mesh.self)) {
    diags.push({ severity: "error", message: `acl_test: ${f.test.src} → ${f.target} (${f.test.proto}) is ${f.got === "accept" ? "accepted" : "denied"}, the test expects ${f.expected === "accept" ? "accept" : "deny"}`, source: f.test.source });
  }
}

/**
 * NAT and port forwards need the kernel to forward IPv4 (net.ipv4.ip_forward=1, per
 * namespace). bolt manages it like any listed sysctl (restored on destroy) unless the user
 * set it; setting it to 0 while needing it is an error.
 */
function impliedForwarding(networks: NetworkIntent[], nft: NftIntent, mesh: MeshIntent | undefined, sysctls: SysctlIntent[], diags: Diagnostic[]) {
  const meshRoutes = mesh && (mesh.advertise.length || mesh.exitNode) ? { source: mesh.source } : undefined;
  const needs = networks.find((n) => n.internet) ?? nft.portForwards[0] ?? meshRoutes;
  if (!needs) return;
  const key = "net.ipv4.ip_forward";
  const explicit = sysctls.find((s) => s.key === key || s.key === "net.ipv4.conf.all.forwarding");
  if (!explicit) sysctls.push({ key, value: "1", source: needs.source, implied: true });
  else if (explicit.value.trim() === "0") diags.push({ severity: "error", message: `sysctl ${explicit.key} = 0, but ${"name" in needs ? `network "${needs.name}" has internet = true` : "hostPort" in needs ? "a port forward is declared" : "the mesh node routes subnets or is an exit node"}: both need IPv4 forwarding`, source: explicit.source });
}

type Err = (message: string, source: SourcePos, hint?: string) => void;

function network(name: string, raw: Obj, pos: (k: string) => SourcePos, source: SourcePos, err: Err): NetworkIntent | undefined {
  let bad = false;
  const fail: Err = (m, s, h) => {
    bad = true;
    err(m, s, h);
  };
  // The schema documents `name` as optional but equal to the table key; a different value is a typo, not a rename.
  if (raw.name !== undefined && raw.name !== name) fail(`network "${name}": name "${String(raw.name)}" must equal the table key [networks.${name}]`, pos("name"));
  const bridge = typeof raw.bridge === "string" ? raw.bridge : deriveIfname("bolt-", name);
  const p = ifnameProblem(bridge);
  if (p) fail(`network "${name}": ${p}`, pos("bridge"));

  const subnet = parseSubnet(String(raw.subnet ?? ""), `network "${name}"`, pos("subnet"), fail);
  if (!subnet) return undefined;
  let gateway = subnet.network + 1;
  if (raw.gateway !== undefined) {
    const g = parseIp4(String(raw.gateway));
    if (g === undefined) fail(`network "${name}": gateway "${String(raw.gateway)}" is not an IPv4 address`, pos("gateway"));
    else gateway = g;
  }
  checkHost(gateway, subnet, `network "${name}": gateway ${formatIp4(gateway)}`, pos("gateway"), fail);

  let pool = { start: subnet.network + 1, end: broadcastOf(subnet) - 1 };
  const range = raw.ip_range as Obj | undefined;
  if (range) {
    const s = parseIp4(String(range.start));
    const e = parseIp4(String(range.end));
    if (s === undefined || e === undefined) fail(`network "${name}": ip_range start/end must be IPv4 addresses`, pos("ip_range"));
    else {
      if (s > e) fail(`network "${name}": ip_range is reversed (${formatIp4(s)} > ${formatIp4(e)})`, pos("ip_range"), `swap start and end`);
      if (!contains(subnet, s) || !contains(subnet, e)) fail(`network "${name}": ip_range ${formatIp4(s)}–${formatIp4(e)} is not inside subnet ${formatCidr4(subnet)}`, pos("ip_range"));
      if (s === subnet.network || e === broadcastOf(subnet)) fail(`network "${name}": ip_range may not include the network or broadcast address`, pos("ip_range"));
      pool = { start: s, end: e };
    }
  }
  const mtu = typeof raw.mtu === "number" ? raw.mtu : 1500;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) fail(`network "${name}": mtu ${mtu} is out of range (IPv4 needs at least 68; the kernel maximum is 65535)`, pos("mtu"));
  if (bad) return undefined;
  const fieldSources: Record<string, SourcePos> = {};
  for (const k of ["bridge", "subnet", "gateway", "ip_range", "mtu"]) if (raw[k] !== undefined) fieldSources[k] = pos(k);
  fieldSources.address = fieldSources.subnet ?? source;
  return { name, bridge, subnet, gateway, pool, mtu, internet: raw.internet !== false, isolated: raw.isolated !== false, source, fieldSources };
}

function parseSubnet(s: string, what: string, at: SourcePos, err: Err): Cidr4 | undefined {
  const c = parseCidr4(s);
  if (!c) {
    err(`${what}: subnet "${s}" is not an IPv4 CIDR (like 172.20.0.0/16)`, at);
    return undefined;
  }
  if (c.hostBits) {
    err(`${what}: subnet "${s}" has host bits set`, at, `did you mean "${formatCidr4(c)}"?`);
    return undefined;
  }
  if (c.prefix > 30) {
    err(`${what}: subnet "${s}" is too small for a gateway and an endpoint (use /30 or larger)`, at);
    return undefined;
  }
  return c;
}

function checkHost(ip: number, subnet: Cidr4, what: string, at: SourcePos, err: Err): boolean {
  if (!contains(subnet, ip)) {
    err(`${what} is outside subnet ${formatCidr4(subnet)}`, at);
    return false;
  }
  if (ip === subnet.network) {
    err(`${what} is the network address of ${formatCidr4(subnet)}`, at);
    return false;
  }
  if (ip === broadcastOf(subnet)) {
    err(`${what} is the broadcast address of ${formatCidr4(subnet)}`, at);
    return false;
  }
  return true;
}

function endpoint(raw: Obj, pos: (k: string) => SourcePos, source: SourcePos, prefix: string, err: Err): EndpointIntent | undefined {
  const name = String(raw.name);
  const type = raw.tap === true ? "tap" : "veth";
  let ip: number | undefined;
  if (raw.ip !== undefined) {
    ip = parseIp4(String(raw.ip));
    if (ip === undefined) {
      err(`endpoint "${name}": ip "${String(raw.ip)}" is not an IPv4 address`, pos("ip"));
      return undefined;
    }
  }
  if (type === "tap" && raw.netns !== undefined) {
    err(`endpoint "${name}": a tap endpoint stays on the host; "netns" applies to veth endpoints only`, pos("netns"));
    return undefined;
  }
  const netns = type === "veth" ? prefix + String(raw.netns ?? name) : undefined;
  if (netns !== undefined && (netns.length > 64 || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(netns))) {
    err(`endpoint "${name}": namespace name "${netns}" must be at most 64 letters, digits, "_", "." or "-"`, pos(raw.netns ? "netns" : "name"));
    return undefined;
  }
  const fieldSources: Record<string, SourcePos> = {};
  for (const k of ["name", "network", "ip", "tap", "netns", "mac"]) if (raw[k] !== undefined) fieldSources[k] = pos(k);
  return { name, network: String(raw.network), type, netns, ip, mac: raw.mac as string | undefined, source, fieldSources };
}

function crossChecks(networks: NetworkIntent[], endpoints: EndpointIntent[], sysctls: SysctlIntent[], err: Err) {
  const dup = <T>(items: T[], key: (t: T) => string | undefined, msg: (t: T, first: T) => string, at: (t: T) => SourcePos) => {
    const seen = new Map<string, T>();
    for (const t of items) {
      const k = key(t);
      if (k === undefined) continue;
      const first = seen.get(k);
      if (first) err(msg(t, first), at(t));
      else seen.set(k, t);
    }
  };
  dup(networks, (n) => n.name, (n) => `network "${n.name}" is defined twice`, (n) => n.source);
  dup(networks, (n) => n.bridge, (n, f) => `network "${n.name}": bridge "${n.bridge}" is already used by network "${f.name}"`, (n) => n.fieldSources.bridge ?? n.source);
  // Sweep by start address (n log n, not every pair): a network overlaps the one reaching
  // furthest among those starting before it. The later one in the files gets the error.
  const order = new Map(networks.map((n, i) => [n, i]));
  let reach: NetworkIntent | undefined;
  for (const n of [...networks].sort((x, y) => x.subnet.network - y.subnet.network || order.get(x)! - order.get(y)!)) {
    if (reach && n.subnet.network <= broadcastOf(reach.subnet)) {
      const [a, b] = order.get(n)! > order.get(reach)! ? [n, reach] : [reach, n];
      err(`network "${a.name}": subnet ${formatCidr4(a.subnet)} overlaps network "${b.name}" (${formatCidr4(b.subnet)}, ${b.source.file}:${b.source.line})`, a.fieldSources.subnet ?? a.source);
    }
    if (!reach || broadcastOf(n.subnet) > broadcastOf(reach.subnet)) reach = n;
  }
  dup(endpoints, (e) => e.name, (e) => `endpoint "${e.name}" is defined twice`, (e) => e.fieldSources.name ?? e.source);
  dup(endpoints, (e) => e.netns, (e, f) => `endpoint "${e.name}": namespace "${e.netns}" already holds endpoint "${f.name}" (each veth endpoint gets its own eth0)`, (e) => e.fieldSources.netns ?? e.fieldSources.name ?? e.source);
  const byName = new Map(networks.map((n) => [n.name, n]));
  const hostIfs = new Map(networks.map((n) => [n.bridge, `network "${n.name}"`]));
  for (const e of endpoints) {
    const hostIf = endpointIfname(e);
    const clash = hostIfs.get(hostIf);
    if (clash) err(`endpoint "${e.name}": its host interface "${hostIf}" collides with ${clash}`, e.fieldSources.name ?? e.source);
    hostIfs.set(hostIf, `endpoint "${e.name}"`);
    const n = byName.get(e.network);
    if (!n) {
      const names = [...byName.keys()];
      const guess = names.length ? closest(e.network, names) : undefined;
      err(`endpoint "${e.name}": network "${e.network}" is not defined`, e.fieldSources.network ?? e.source, guess && distance(guess, e.network) <= 3 ? `did you mean "${guess}"?` : names.length ? `defined networks: ${names.join(", ")}` : "define it under [networks.NAME]");
      continue;
    }
    if (e.ip !== undefined) {
      if (checkHost(e.ip, n.subnet, `endpoint "${e.name}": ip ${formatIp4(e.ip)}`, e.fieldSources.ip ?? e.source, err) && e.ip === n.gateway) {
        err(`endpoint "${e.name}": ip ${formatIp4(e.ip)} is the gateway of network "${n.name}"`, e.fieldSources.ip ?? e.source);
      }
    }
  }
  dup(endpoints, (e) => (e.ip === undefined ? undefined : formatIp4(e.ip)), (e, f) => `endpoint "${e.name}": ip ${formatIp4(e.ip!)} is already used by endpoint "${f.name}"`, (e) => e.fieldSources.ip ?? e.source);
  dup(sysctls, (s) => s.key, (s) => `sysctl "${s.key}" is set twice`, (s) => s.source);
}

/** Host-side interface of an endpoint: bv-<name> for veth, bt-<name> for tap (hashed when long). */
export function endpointIfname(e: Pick<EndpointIntent, "name" | "type">): string {
  return deriveIfname(e.type === "tap" ? "bt-" : "bv-", e.name);
}
