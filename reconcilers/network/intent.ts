import type { SourcePos } from "../../src/core/diagnostics.js";
import { broadcastOf, contains, formatCidr4, formatIp4, overlaps, parseCidr4, parseIp4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { fragmentKey } from "../../src/core/intent.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import type { LoadedFile } from "../../src/config/load.js";
import { deriveIfname, ifnameProblem } from "../../src/config/names.js";
import { pointer } from "../../src/config/positions.js";
import { duplicates } from "../../src/config/checks.js";
import type { Err } from "../../src/config/checks.js";
import { checkOverlaps6, network6 } from "./intent6.js";
import type { Network6 } from "./intent6.js";

/** `[networks.NAME]` and volantd's bridge: what the files say, validated. */
export interface NetworkIntent {
  name: string;
  bridge: string;
  subnet: Cidr4;
  gateway: number;
  pool: { start: number; end: number };
  mtu: number;
  /** masquerade out of the host and forwarding outwards (Docker/Joblet default) */
  internet: boolean;
  /** no forwarding to or from other bolt networks */
  isolated: boolean;
  /** dual-stack: the IPv6 half, when the network has one */
  v6?: Network6;
  source: SourcePos;
  fieldSources: Record<string, SourcePos>;
}

export const NETWORKS = fragmentKey<NetworkIntent[]>("network", () => []);

type Obj = Record<string, unknown>;

/** Volant's documented bridge defaults (seed: Volant networking guide). */
const VOLANT_DEFAULTS = { name: "volant0", subnet: "192.168.127.0/24", gateway: "192.168.127.1", start: "192.168.127.100", end: "192.168.127.254" };

export const networkIntent: IntentHooks = {
  build(files: LoadedFile[], ctx: IntentContext): NetworkIntent[] {
    const networks: NetworkIntent[] = [];
    for (const f of files) {
      const pos = (...parts: (string | number)[]) => f.positions.value(pointer(parts));
      const keyPos = (...parts: (string | number)[]) => f.positions.key(pointer(parts));
      if (f.kind === "boltfile") {
        for (const [name, raw] of Object.entries((f.data.networks ?? {}) as Record<string, Obj>)) {
          const n = network(
            name,
            raw,
            (k) => pos("networks", name, k),
            (k) => pos("networks", name, "ipv6", k),
            keyPos("networks", name),
            ctx.err,
          );
          if (n) networks.push(n);
        }
      } else if (f.kind === "volantd") {
        // network-policies.yaml alone (policies, no networking): rules for VMs, not a default bridge.
        if (f.data.networking === undefined && f.data.policies !== undefined) continue;
        const net = (f.data.networking ?? {}) as Obj;
        if ((net.mode ?? "bridge") !== "bridge") continue;
        const b = (net.bridge ?? {}) as Obj;
        const range = (b.ip_range ?? {}) as Obj;
        const subnetGiven = typeof b.subnet === "string";
        // Volant reserves .1–.99 of its subnet; with a custom subnet and no range, use the whole subnet.
        const raw: Obj = {
          bridge: b.name ?? VOLANT_DEFAULTS.name,
          subnet: b.subnet ?? VOLANT_DEFAULTS.subnet,
          gateway: b.gateway ?? (subnetGiven ? undefined : VOLANT_DEFAULTS.gateway),
          ip_range: b.ip_range ? range : subnetGiven ? undefined : { start: VOLANT_DEFAULTS.start, end: VOLANT_DEFAULTS.end },
          ipv6: volantIpv6(b.ipv6 as Obj | undefined),
        };
        const at = (k: string) => {
          const map: Record<string, (string | number)[]> = {
            bridge: ["networking", "bridge", "name"],
            subnet: ["networking", "bridge", "subnet"],
            gateway: ["networking", "bridge", "gateway"],
            ip_range: ["networking", "bridge", "ip_range"],
            ipv6: ["networking", "bridge", "ipv6"],
          };
          return pos(...(map[k] ?? ["networking", "bridge"]));
        };
        const at6 = (k: string) => pos("networking", "bridge", "ipv6", k);
        const n = network("volant", raw, at, at6, keyPos("networking", "bridge"), ctx.err);
        if (n) networks.push(n);
      }
    }
    checkNetworks(networks, ctx.err);
    return networks;
  },
  describe: (f) => `${((f as NetworkIntent[] | undefined) ?? []).length} network(s)`,
};

function network(
  name: string,
  raw: Obj,
  pos: (k: string) => SourcePos,
  pos6: (k: string) => SourcePos,
  source: SourcePos,
  err: Err,
): NetworkIntent | undefined {
  let bad = false;
  const fail: Err = (m, s, h) => {
    bad = true;
    err(m, s, h);
  };
  // The schema documents `name` as optional but equal to the table key; a different value is a typo, not a rename.
  if (raw.name !== undefined && raw.name !== name)
    fail(`network "${name}": name "${String(raw.name)}" must equal the table key [networks.${name}]`, pos("name"));
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
      if (s > e) fail(`network "${name}": ip_range is reversed (${formatIp4(s)} > ${formatIp4(e)})`, pos("ip_range"), "swap start and end");
      if (!contains(subnet, s) || !contains(subnet, e))
        fail(`network "${name}": ip_range ${formatIp4(s)}–${formatIp4(e)} is not inside subnet ${formatCidr4(subnet)}`, pos("ip_range"));
      if (s === subnet.network || e === broadcastOf(subnet))
        fail(`network "${name}": ip_range may not include the network or broadcast address`, pos("ip_range"));
      pool = { start: s, end: e };
    }
  }
  const mtu = typeof raw.mtu === "number" ? raw.mtu : 1500;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
    fail(`network "${name}": mtu ${mtu} is out of range (IPv4 needs at least 68; the kernel maximum is 65535)`, pos("mtu"));
  const internet = raw.internet !== false;
  const v6 = raw.ipv6 ? network6(`network "${name}"`, raw.ipv6 as Obj, internet, pos6, fail) : undefined;
  // IPv6 requires an MTU of at least 1280 on every link (RFC 8200): the kernel disables it on a smaller one.
  if (v6 && mtu < 1280) fail(`network "${name}": mtu ${mtu} is below 1280, the IPv6 minimum (the kernel turns IPv6 off on such a link)`, pos("mtu"));
  if (bad) return undefined;
  const fieldSources: Record<string, SourcePos> = {};
  for (const k of ["bridge", "subnet", "gateway", "ip_range", "mtu", "ipv6"]) if (raw[k] !== undefined) fieldSources[k] = pos(k);
  fieldSources.address = fieldSources.subnet ?? source;
  if (v6) {
    fieldSources.gateway6 = raw.ipv6 && (raw.ipv6 as Obj).gateway !== undefined ? pos6("gateway") : pos6("subnet");
    fieldSources.subnet6 = pos6("subnet");
  }
  return { name, bridge, subnet, gateway, pool, mtu, internet, isolated: raw.isolated !== false, ...(v6 ? { v6 } : {}), source, fieldSources };
}

/** Special-purpose IPv4 ranges (RFC 6890) that a network cannot use. */
const SPECIAL = [
  { cidr: parseCidr4("0.0.0.0/8")!, what: '"this network" (0.0.0.0/8)' },
  { cidr: parseCidr4("127.0.0.0/8")!, what: "loopback" },
  { cidr: parseCidr4("169.254.0.0/16")!, what: "link-local" },
  { cidr: parseCidr4("224.0.0.0/4")!, what: "multicast" },
  { cidr: parseCidr4("240.0.0.0/4")!, what: "reserved (class E) and broadcast" },
];

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
  const special = SPECIAL.find((x) => overlaps(x.cidr, c));
  if (special) {
    err(
      `${what}: subnet "${s}" is ${special.what} (${formatCidr4(special.cidr)}): it cannot carry a bridge's traffic`,
      at,
      "use a private range: 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
    );
    return undefined;
  }
  return c;
}

/** An address usable by a host of the subnet: inside it, not its network or broadcast address. */
export function checkHost(ip: number, subnet: Cidr4, what: string, at: SourcePos, err: Err): boolean {
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

function checkNetworks(networks: NetworkIntent[], err: Err) {
  duplicates(
    networks,
    (n) => n.name,
    (n) => `network "${n.name}" is defined twice`,
    (n) => n.source,
    err,
  );
  duplicates(
    networks,
    (n) => n.bridge,
    (n, f) => `network "${n.name}": bridge "${n.bridge}" is already used by network "${f.name}"`,
    (n) => n.fieldSources.bridge ?? n.source,
    err,
  );
  // Sweep by start address (n log n, not every pair): a network overlaps the one reaching
  // furthest among those starting before it. The later one in the files gets the error.
  const order = new Map(networks.map((n, i) => [n, i]));
  let reach: NetworkIntent | undefined;
  for (const n of [...networks].sort((x, y) => x.subnet.network - y.subnet.network || order.get(x)! - order.get(y)!)) {
    if (reach && n.subnet.network <= broadcastOf(reach.subnet)) {
      const [a, b] = order.get(n)! > order.get(reach)! ? [n, reach] : [reach, n];
      err(
        `network "${a.name}": subnet ${formatCidr4(a.subnet)} overlaps network "${b.name}" (${formatCidr4(b.subnet)}, ${b.source.file}:${b.source.line})`,
        a.fieldSources.subnet ?? a.source,
      );
    }
    if (!reach || broadcastOf(n.subnet) > broadcastOf(reach.subnet)) reach = n;
  }
  checkOverlaps6(networks, err);
}

/** volantd's `bridge.ipv6 = { enabled, subnet, gateway }`: only when enabled. */
function volantIpv6(v: Obj | undefined): Obj | undefined {
  if (!v || v.enabled !== true) return undefined;
  return { subnet: v.subnet ?? "", gateway: v.gateway };
}
