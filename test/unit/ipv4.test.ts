// IPv4 arithmetic and interface-name rules: strict on purpose. inet_aton would read
// "010.0.0.1" as octal and "10.1" as 10.0.0.1; bolt refuses both rather than guess.
import { describe, expect, it } from "vitest";
import { broadcastOf, contains, formatCidr4, formatIp4, maskOf, overlaps, parseCidr4, parseIp4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { IFNAME_MAX, IFNAME_RE, deriveIfname, ifnameProblem } from "../../src/config/names.js";

const cidr = (s: string): Cidr4 => {
  const c = parseCidr4(s);
  if (!c) throw new Error(`bad test cidr ${s}`);
  return { network: c.network, prefix: c.prefix };
};

describe("parseIp4 / formatIp4", () => {
  it("parses dotted quads to unsigned 32-bit integers and back", () => {
    expect(parseIp4("0.0.0.0")).toBe(0);
    expect(parseIp4("10.0.0.1")).toBe(0x0a000001);
    expect(parseIp4("255.255.255.255")).toBe(0xffffffff);
    expect(parseIp4("192.168.127.100")).toBe(0xc0a87f64);
    for (const s of ["0.0.0.0", "1.2.3.4", "172.20.255.254", "255.255.255.255", "128.0.0.0"]) expect(formatIp4(parseIp4(s)!)).toBe(s);
  });

  it.each([
    ["010.0.0.1", "leading zero (octal to inet_aton)"],
    ["10.0.0.01", "leading zero in the last octet"],
    ["10.0.0.256", "octet over 255"],
    ["256.0.0.0", "first octet over 255"],
    ["10.0.0", "missing octet"],
    ["10.1", "shorthand"],
    ["10.0.0.1.5", "five octets"],
    ["10..0.1", "empty octet"],
    ["10.0.0.", "trailing dot"],
    ["", "empty"],
    [" 10.0.0.1", "leading space"],
    ["10.0.0.1 ", "trailing space"],
    ["10.0.0.-1", "negative"],
    ["10.0.0.+1", "plus sign"],
    ["0x0a.0.0.1", "hex"],
    ["1e1.0.0.1", "exponent"],
    ["10.0.0.1000", "four digits"],
    ["10.0.0.1/24", "a CIDR is not an address"],
  ])("refuses %j (%s)", (s) => {
    expect(parseIp4(s)).toBeUndefined();
  });
});

describe("parseCidr4", () => {
  it("parses network and prefix and flags host bits", () => {
    expect(parseCidr4("172.20.0.0/16")).toEqual({ addr: 0xac140000, network: 0xac140000, prefix: 16, hostBits: false });
    expect(parseCidr4("172.20.1.5/16")).toEqual({ addr: 0xac140105, network: 0xac140000, prefix: 16, hostBits: true });
    expect(parseCidr4("10.0.0.1/32")).toMatchObject({ network: 0x0a000001, prefix: 32, hostBits: false });
    expect(parseCidr4("0.0.0.0/0")).toMatchObject({ network: 0, prefix: 0, hostBits: false });
    expect(parseCidr4("1.2.3.4/0")).toMatchObject({ network: 0, prefix: 0, hostBits: true });
    expect(parseCidr4("10.0.0.128/25")).toMatchObject({ prefix: 25, hostBits: false });
    expect(parseCidr4("10.0.0.129/25")).toMatchObject({ prefix: 25, hostBits: true });
  });

  it.each([
    "10.0.0.0/33",
    "10.0.0.0/024",
    "10.0.0.0/08",
    "10.0.0.0/",
    "10.0.0.0",
    "10.0.0/8",
    "010.0.0.0/8",
    "10.0.0.0/8/8",
    "10.0.0.0/-1",
    "10.0.0.0 /8",
    "10.0.0.0/100",
  ])("refuses %j", (s) => {
    expect(parseCidr4(s)).toBeUndefined();
  });

  it("formats back to canonical form", () => {
    expect(formatCidr4(cidr("172.20.7.9/16"))).toBe("172.20.0.0/16");
    expect(formatCidr4(cidr("0.0.0.0/0"))).toBe("0.0.0.0/0");
  });
});

describe("masks, broadcast, contains, overlaps", () => {
  it("maskOf covers /0 and /32 without JavaScript's shift-by-32 trap", () => {
    expect(maskOf(0)).toBe(0);
    expect(maskOf(32)).toBe(0xffffffff);
    expect(maskOf(24)).toBe(0xffffff00);
    expect(maskOf(1)).toBe(0x80000000);
  });

  it("broadcast is the last address of the prefix", () => {
    expect(formatIp4(broadcastOf(cidr("10.1.0.0/24")))).toBe("10.1.0.255");
    expect(formatIp4(broadcastOf(cidr("172.20.0.0/16")))).toBe("172.20.255.255");
    expect(formatIp4(broadcastOf(cidr("192.168.1.4/30")))).toBe("192.168.1.7");
    expect(formatIp4(broadcastOf(cidr("10.0.0.1/32")))).toBe("10.0.0.1");
    expect(formatIp4(broadcastOf(cidr("0.0.0.0/0")))).toBe("255.255.255.255");
    expect(broadcastOf(cidr("128.0.0.0/1"))).toBe(0xffffffff); // stays unsigned
  });

  it("contains is inclusive of network and broadcast and exact at the edges", () => {
    const c = cidr("10.1.0.0/24");
    expect(contains(c, parseIp4("10.1.0.0")!)).toBe(true);
    expect(contains(c, parseIp4("10.1.0.255")!)).toBe(true);
    expect(contains(c, parseIp4("10.1.1.0")!)).toBe(false);
    expect(contains(c, parseIp4("10.0.255.255")!)).toBe(false);
    expect(contains(cidr("0.0.0.0/0"), parseIp4("203.0.113.9")!)).toBe(true);
    expect(contains(cidr("200.0.0.0/8"), parseIp4("200.255.255.255")!)).toBe(true); // high bit set
  });

  it("overlaps when one prefix contains the other, both ways; adjacent prefixes do not", () => {
    expect(overlaps(cidr("10.1.0.0/16"), cidr("10.1.5.0/24"))).toBe(true);
    expect(overlaps(cidr("10.1.5.0/24"), cidr("10.1.0.0/16"))).toBe(true);
    expect(overlaps(cidr("10.1.0.0/24"), cidr("10.1.0.0/24"))).toBe(true);
    expect(overlaps(cidr("10.1.0.0/24"), cidr("10.1.1.0/24"))).toBe(false);
    expect(overlaps(cidr("10.1.0.0/25"), cidr("10.1.0.128/25"))).toBe(false);
    expect(overlaps(cidr("0.0.0.0/0"), cidr("192.168.0.0/16"))).toBe(true);
    expect(overlaps(cidr("192.168.0.0/16"), cidr("172.16.0.0/12"))).toBe(false);
  });
});

describe("ifnameProblem (IFNAMSIZ = 16 with the NUL)", () => {
  it("accepts names the kernel and nft take", () => {
    for (const n of ["bolt-web", "volant0", "br_0", "eth0.100", "a", "x".repeat(15), "0abc"]) expect(ifnameProblem(n)).toBeUndefined();
  });

  it("refuses 16 characters and more, naming the length", () => {
    expect(ifnameProblem("x".repeat(16))).toBe(`interface name "${"x".repeat(16)}" is 16 characters; Linux allows at most 15`);
  });

  it.each(["br;x", "br x", "br/x", "br:x", "-br", ".br", "", "br\tx", 'br"x', "br{x}", "brü"])(
    "refuses %j (characters ip, nft or the kernel choke on)",
    (n) => {
      expect(ifnameProblem(n)).toMatch(/may only contain letters, digits/);
    },
  );

  it("refuses the names /proc/sys/net/*/conf reserves", () => {
    expect(ifnameProblem("all")).toMatch(/reserved by the kernel/);
    expect(ifnameProblem("default")).toMatch(/reserved by the kernel/);
  });
});

describe("deriveIfname", () => {
  it("is prefix+name when that fits", () => {
    expect(deriveIfname("bolt-", "web")).toBe("bolt-web");
    expect(deriveIfname("bv-", "x".repeat(12))).toBe("bv-" + "x".repeat(12));
  });

  it("shortens with a hash when too long: readable head, ≤15 chars, stable across calls", () => {
    const long = "gaming-network-eu-west";
    const d = deriveIfname("bolt-", long);
    // Pinned: a different derivation would rename every deployed bridge on upgrade.
    expect(d).toBe("bolt-gami-11c69"); // prefix + 4-char head + "-" + sha256(name)[0:5]
    expect(d.length).toBe(IFNAME_MAX);
    expect(deriveIfname("bolt-", long)).toBe(d);
  });

  it("names sharing a long head still get different interfaces", () => {
    const a = deriveIfname("bv-", "database-primary-1");
    const b = deriveIfname("bv-", "database-primary-2");
    expect(a).not.toBe(b);
    expect(a.slice(0, 9)).toBe(b.slice(0, 9));
  });

  it("every derived name is a valid interface name, for any logical name and bolt's prefixes", () => {
    const names = [
      "a",
      "web",
      "x".repeat(12),
      "x".repeat(13),
      "x".repeat(32),
      "a b c",
      "net;rm -rf",
      "ü-net",
      "...",
      "____________________",
      "9-lives-of-a-very-long-name",
    ];
    for (const prefix of ["bolt-", "bv-", "bt-"]) {
      for (const n of names) {
        const d = deriveIfname(prefix, n);
        expect(d.length, `${prefix}${n} → ${d}`).toBeLessThanOrEqual(IFNAME_MAX);
        expect(d).toMatch(IFNAME_RE);
        expect(ifnameProblem(d)).toBeUndefined();
        expect(d.startsWith(prefix)).toBe(true);
      }
    }
  });
});
