// IPv6 prefixes as WireGuard and iproute2 print them (inet_ntop): what bolt writes must compare
// equal to what `wg show` and `ip -j` print back. The reference is Node's URL host serializer
// (the WHATWG form, which compresses like glibc: the first longest run of 2+ zero groups).
import { describe, expect, it } from "vitest";
import { contains6, formatCidr6, formatIp6, parseCidr6, parseIp6 } from "../../src/core/ipv6.js";

const reference = (a: string) => new URL(`http://[${a}]/`).hostname.slice(1, -1);

describe("ipv6", () => {
  it("formats like inet_ntop for a spread of addresses", () => {
    for (const a of [
      "::",
      "::1",
      "fd00::1",
      "2001:db8::2:1",
      "2001:db8:0:0:1:0:0:1",
      "2001:0:0:1::1",
      "fe80::1:0:0:0",
      "1:0:1:0:1:0:1:0",
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
      "2001:DB8::A",
      "::ffff:192.0.2.1",
    ]) {
      const v = parseIp6(a);
      expect(v, a).toBeDefined();
      expect(formatIp6(v!), a).toBe(reference(a));
    }
  });
  it("refuses what is not an address", () => {
    for (const a of ["", ":", ":::", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "::1.2.3.256"]) expect(parseIp6(a), a).toBeUndefined();
  });
  it("prefixes: network, host bits, containment", () => {
    const c = parseCidr6("fd00:8::2/64")!;
    expect(formatCidr6(c)).toBe("fd00:8::/64");
    expect(c.hostBits).toBe(true);
    expect(parseCidr6("fd00:8::/64")!.hostBits).toBe(false);
    expect(parseCidr6("fd00::1")!.prefix).toBe(128);
    expect(parseCidr6("fd00::/129")).toBeUndefined();
    expect(contains6(parseCidr6("fd00:8::/64")!, parseIp6("fd00:8::77")!)).toBe(true);
    expect(contains6(parseCidr6("fd00:8::/64")!, parseIp6("fd00:9::77")!)).toBe(false);
  });
});
