/**
 * IPv6 prefixes as WireGuard and iproute2 print them: 128-bit values (bigint) and a prefix
 * length, formatted like glibc's inet_ntop (lowercase, no leading zeros, the longest run of two
 * or more zero groups as "::"), so what bolt writes compares equal to what `wg show` and
 * `ip -j` print back.
 */
export interface Cidr6 {
  network: bigint;
  prefix: number;
}

const ALL = (1n << 128n) - 1n;

export function parseIp6(s: string): bigint | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.includes(":::")) return undefined;
  let text = s;
  // A trailing dotted quad (::ffff:192.0.2.1) is two groups.
  const v4 = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const b = v4.slice(2).map(Number);
    if (b.some((x) => x > 255)) return undefined;
    text = `${v4[1]}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  let v = 0n;
  for (const g of all) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(Number.parseInt(g, 16));
  }
  return v;
}

export function formatIp6(v: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { base: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > best.len) best = { base: i, len: j - i };
    i = j;
  }
  if (best.len < 2) best = { base: -1, len: 0 };
  const hex = g.map((x) => x.toString(16));
  if (best.base < 0) return hex.join(":");
  return `${hex.slice(0, best.base).join(":")}::${hex.slice(best.base + best.len).join(":")}`;
}

/** `fd00::/64`, or an address (a /128); `hostBits`: bits set past the prefix. */
export function parseCidr6(s: string): (Cidr6 & { addr: bigint; hostBits: boolean }) | undefined {
  const [a, p, extra] = s.split("/");
  if (extra !== undefined) return undefined;
  const addr = parseIp6(a ?? "");
  const prefix = p === undefined ? 128 : /^\d{1,3}$/.test(p) ? Number(p) : Number.NaN;
  if (addr === undefined || !(prefix >= 0 && prefix <= 128)) return undefined;
  const mask = prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
  return { network: addr & mask, prefix, addr, hostBits: (addr & ~mask & ALL) !== 0n };
}

export function formatCidr6(c: Cidr6): string {
  return `${formatIp6(c.network)}/${c.prefix}`;
}

export function contains6(c: Cidr6, ip: bigint): boolean {
  const mask = c.prefix === 0 ? 0n : (ALL << BigInt(128 - c.prefix)) & ALL;
  return (ip & mask) === c.network;
}

export function maskOf6(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
}

/** The last address of a prefix (IPv6 has no broadcast: it is an ordinary host address). */
export function lastOf6(c: Cidr6): bigint {
  return c.network | (~maskOf6(c.prefix) & ALL);
}

export function overlaps6(a: Cidr6, b: Cidr6): boolean {
  const m = maskOf6(Math.min(a.prefix, b.prefix));
  return (a.network & m) === (b.network & m);
}

/** An address with its prefix length as `ip` prints it: `fd20::10/64`. */
export function formatIfAddr6(ip: bigint, prefix: number): string {
  return `${formatIp6(ip)}/${prefix}`;
}
