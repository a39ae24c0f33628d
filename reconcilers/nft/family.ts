import { formatIp4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { formatIp6, lastOf6 } from "../../src/core/ipv6.js";
import type { Cidr6 } from "../../src/core/ipv6.js";

/**
 * What differs between IPv4 and IPv6 in bolt's nft table: the payload keyword (`ip` / `ip6`),
 * the set element type, ICMP's protocol name, the key suffix that keeps a rule's two families
 * apart, and how an address is written. One rule serves both families where nft matches on
 * interfaces alone; a rule that matches an address is one family's.
 */
export type Fam = 4 | 6;

export const FAM = {
  4: { ip: "ip", type: "ipv4_addr", icmp: "icmp", suffix: "", bits: 32 },
  6: { ip: "ip6", type: "ipv6_addr", icmp: "ipv6-icmp", suffix: "/6", bits: 128 },
} as const;

/**
 * Disjoint, sorted set elements: nft refuses overlapping intervals in one transaction
 * (without auto-merge), and blocklists overlap all the time.
 */
export function mergeCidrs(cidrs: Cidr4[]): string[] {
  return mergeRanges(
    cidrs.map((c) => [BigInt(c.network), BigInt(c.network) + (1n << BigInt(32 - c.prefix)) - 1n]),
    32,
    (a) => formatIp4(Number(a)),
  );
}

export function mergeCidrs6(cidrs: Cidr6[]): string[] {
  return mergeRanges(
    cidrs.map((c) => [c.network, lastOf6(c)]),
    128,
    formatIp6,
  );
}

function mergeRanges(ranges: [bigint, bigint][], bits: number, format: (a: bigint) => string): string[] {
  const sorted = [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const merged: [bigint, bigint][] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1n) last[1] = last[1] > r[1] ? last[1] : r[1];
    else merged.push([r[0], r[1]]);
  }
  return merged.map(([lo, hi]) => rangeText(lo, hi, bits, format));
}

/** An element as nft lists it back: an address, a prefix when the range is one, else `lo-hi`. */
function rangeText(lo: bigint, hi: bigint, bits: number, format: (a: bigint) => string): string {
  if (lo === hi) return format(lo);
  const size = hi - lo + 1n;
  // A power of two aligned on its size is a prefix.
  if ((size & (size - 1n)) === 0n && lo % size === 0n) return `${format(lo)}/${bits - (size.toString(2).length - 1)}`;
  return `${format(lo)}-${format(hi)}`;
}
