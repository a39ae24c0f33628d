/** Strict IPv4 arithmetic on 32-bit unsigned integers (no leading zeros, no shorthand). */
export interface Cidr4 {
  network: number;
  prefix: number;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

export function parseIp4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIp4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/p"; `hostBits` reports whether bits past the prefix were set. */
export function parseCidr4(s: string): (Cidr4 & { addr: number; hostBits: boolean }) | undefined {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(s);
  if (!m) return undefined;
  const addr = parseIp4(m[1]!);
  const prefix = Number(m[2]);
  if (addr === undefined || prefix > 32 || (m[2]!.length > 1 && m[2]![0] === "0")) return undefined;
  const network = (addr & maskOf(prefix)) >>> 0;
  return { addr, network, prefix, hostBits: network !== addr };
}

export function broadcastOf(c: Cidr4): number {
  return (c.network | (~maskOf(c.prefix) >>> 0)) >>> 0;
}

export function contains(c: Cidr4, ip: number): boolean {
  return (ip & maskOf(c.prefix)) >>> 0 === c.network;
}

export function overlaps(a: Cidr4, b: Cidr4): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.network & maskOf(p)) >>> 0 === (b.network & maskOf(p)) >>> 0;
}

export function formatCidr4(c: Cidr4): string {
  return `${formatIp4(c.network)}/${c.prefix}`;
}

/**
 * Which of many address ranges overlaps a given one, in O(log n) per query: ranges sorted by
 * start with a running maximum of their ends (1000 subnets against thousands of routes).
 */
export class RangeIndex<T> {
  private readonly items: { start: number; end: number; value: T }[];
  private readonly maxEnd: number[];
  constructor(items: { start: number; end: number; value: T }[]) {
    this.items = [...items].sort((a, b) => a.start - b.start);
    let m = -1;
    this.maxEnd = this.items.map((i) => (m = Math.max(m, i.end)));
  }

  /** A range that overlaps [start, end] (the latest-starting one), or undefined. */
  find(start: number, end: number): T | undefined {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid]!.start <= end) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0 && this.maxEnd[i]! >= start; i--) if (this.items[i]!.end >= start) return this.items[i]!.value;
    return undefined;
  }
}

export function rangeOf(c: Cidr4): { start: number; end: number } {
  return { start: c.network, end: broadcastOf(c) };
}
