import type { SourcePos } from "../../src/core/diagnostics.js";
import { contains6, formatCidr6, formatIp6, lastOf6, overlaps6, parseCidr6, parseIp6 } from "../../src/core/ipv6.js";
import type { Cidr6 } from "../../src/core/ipv6.js";
import type { Err } from "../../src/config/checks.js";

/**
 * A network's IPv6 half (`ipv6 = { subnet, gateway, ip_range, internet }`, volantd's
 * `bridge.ipv6`): the bridge carries the gateway, endpoints get an address from the pool and a
 * default route via it.
 */
export interface Network6 {
  subnet: Cidr6;
  gateway: bigint;
  pool: { start: bigint; end: bigint };
  /**
   * masquerade: NAT66 out of the host (like the IPv4 default, and netavark's); routed: forwarded
   * with the endpoints' own addresses (the upstream routes the prefix back); false: no forwarding
   * out of the bolt networks for IPv6.
   */
  internet: "masquerade" | "routed" | false;
}

type Obj = Record<string, unknown>;

/**
 * IPv6 ranges a bridge cannot carry (RFC 6890 / 4291): unspecified and loopback, IPv4-mapped,
 * link-local (the kernel's own per-link fe80::/64), multicast.
 */
const SPECIAL6 = [
  { cidr: parseCidr6("::/96")!, what: "the unspecified/loopback and IPv4-compatible range" },
  { cidr: parseCidr6("::ffff:0:0/96")!, what: "IPv4-mapped" },
  { cidr: parseCidr6("fe80::/10")!, what: "link-local" },
  { cidr: parseCidr6("ff00::/8")!, what: "multicast" },
];

/** Parses a network's `ipv6` table; `pos(k)` locates its keys (subnet, gateway, ip_range, internet). */
export function network6(what: string, raw: Obj, v4Internet: boolean, pos: (k: string) => SourcePos, fail: Err): Network6 | undefined {
  const text = String(raw.subnet ?? "");
  const c = parseCidr6(text);
  if (!c || !text.includes("/")) return void fail(`${what}: ipv6 subnet "${text}" is not an IPv6 CIDR (like fd20::/64)`, pos("subnet"));
  if (c.hostBits) return void fail(`${what}: ipv6 subnet "${text}" has host bits set`, pos("subnet"), `did you mean "${formatCidr6(c)}"?`);
  if (c.prefix > 126)
    return void fail(`${what}: ipv6 subnet "${text}" is too small for a gateway and an endpoint (use /126 or larger; /64 is usual)`, pos("subnet"));
  const special = SPECIAL6.find((s) => overlaps6(s.cidr, c));
  if (special)
    return void fail(
      `${what}: ipv6 subnet "${text}" is ${special.what} (${formatCidr6(special.cidr)}): it cannot carry a bridge's traffic`,
      pos("subnet"),
      "use a unique local prefix (fd00::/8, e.g. fd20::/64) or a global one delegated to this host",
    );
  let bad = false;
  const err: Err = (m, s, h) => {
    bad = true;
    fail(m, s, h);
  };
  let gateway = c.network + 1n;
  if (raw.gateway !== undefined) {
    const g = parseIp6(String(raw.gateway));
    if (g === undefined) err(`${what}: ipv6 gateway "${String(raw.gateway)}" is not an IPv6 address`, pos("gateway"));
    else gateway = g;
  }
  checkHost6(gateway, c, `${what}: ipv6 gateway ${formatIp6(gateway)}`, pos("gateway"), err);
  let pool = { start: c.network + 1n, end: lastOf6(c) };
  const range = raw.ip_range as Obj | undefined;
  if (range) {
    const s = parseIp6(String(range.start));
    const e = parseIp6(String(range.end));
    if (s === undefined || e === undefined) err(`${what}: ipv6 ip_range start/end must be IPv6 addresses`, pos("ip_range"));
    else {
      if (s > e) err(`${what}: ipv6 ip_range is reversed (${formatIp6(s)} > ${formatIp6(e)})`, pos("ip_range"), "swap start and end");
      else if (!contains6(c, s) || !contains6(c, e))
        err(`${what}: ipv6 ip_range ${formatIp6(s)}–${formatIp6(e)} is not inside subnet ${formatCidr6(c)}`, pos("ip_range"));
      else if (s === c.network) err(`${what}: ipv6 ip_range may not include the subnet-router anycast address ${formatIp6(c.network)}`, pos("ip_range"));
      pool = { start: s, end: e };
    }
  }
  const inet = raw.internet;
  const internet = inet === undefined ? (v4Internet ? "masquerade" : false) : inet === true ? "masquerade" : (inet as Network6["internet"]);
  if (bad) return undefined;
  return { subnet: { network: c.network, prefix: c.prefix }, gateway, pool, internet };
}

/** An IPv6 host address of the subnet: inside it, not its subnet-router anycast (all-zero host) address. */
export function checkHost6(ip: bigint, subnet: Cidr6, what: string, at: SourcePos, err: Err): boolean {
  if (!contains6(subnet, ip)) {
    err(`${what} is outside subnet ${formatCidr6(subnet)}`, at);
    return false;
  }
  if (ip === subnet.network) {
    err(`${what} is the subnet-router anycast address of ${formatCidr6(subnet)}`, at);
    return false;
  }
  return true;
}

/** Overlapping IPv6 subnets between networks: sweep by start, the later one in the files gets the error. */
export function checkOverlaps6<T extends { name: string; v6?: Network6; source: SourcePos; fieldSources: Record<string, SourcePos> }>(networks: T[], err: Err) {
  const order = new Map(networks.map((n, i) => [n, i]));
  const with6 = networks.filter((n) => n.v6);
  let reach: T | undefined;
  for (const n of with6.sort((x, y) => cmp(x.v6!.subnet.network, y.v6!.subnet.network) || order.get(x)! - order.get(y)!)) {
    if (reach && n.v6!.subnet.network <= lastOf6(reach.v6!.subnet)) {
      const [a, b] = order.get(n)! > order.get(reach)! ? [n, reach] : [reach, n];
      err(
        `network "${a.name}": ipv6 subnet ${formatCidr6(a.v6!.subnet)} overlaps network "${b.name}" (${formatCidr6(b.v6!.subnet)}, ${b.source.file}:${b.source.line})`,
        a.fieldSources.ipv6 ?? a.source,
      );
    }
    if (!reach || lastOf6(n.v6!.subnet) > lastOf6(reach.v6!.subnet)) reach = n;
  }
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
