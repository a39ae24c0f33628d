// Mesh addresses not given in ghostwire.toml are derived from the node's public key: the same
// key always gives the same address (every node computes its peers' too, and a re-plan must
// not move it), always inside 100.64.0.0/10 (CGNAT, what Tailscale uses), never a .0 or .255.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { contains, formatIp4, parseCidr4 } from "../../src/core/ipv4.js";
import { allocateMeshAddress } from "../../reconcilers/wireguard/intent.js";

const CGNAT = parseCidr4("100.64.0.0/10")!;
const key = () => randomBytes(32).toString("base64");

describe("allocateMeshAddress", () => {
  it("is stable: the same public key, the same address (also across calls in any order)", () => {
    const keys = Array.from({ length: 50 }, key);
    const first = keys.map(allocateMeshAddress);
    expect([...keys].reverse().map(allocateMeshAddress).reverse()).toEqual(first);
    // Pinned (computed independently: sha256 of the key text, first 4 bytes mod 2^22 over
    // 100.64.0.0): a change of the derivation would move every node without an address.
    expect(formatIp4(allocateMeshAddress("3ULvVWlUSqWmNt2/hAUdrW+BeKJMVs1AmBHfFtH9TRg="))).toBe("100.116.139.105");
  });

  it("stays inside 100.64.0.0/10 and avoids .0 and .255 (20 000 random keys)", () => {
    for (let i = 0; i < 20_000; i++) {
      const a = allocateMeshAddress(key());
      expect(contains(CGNAT, a)).toBe(true);
      expect([0, 255]).not.toContain(a & 255);
    }
  });

  it("spreads: 1 000 keys give (almost) 1 000 addresses", () => {
    const s = new Set(Array.from({ length: 1000 }, () => allocateMeshAddress(key())));
    // 4 M addresses: a birthday collision among 1 000 is possible but rare (p ≈ 0.1)
    expect(s.size).toBeGreaterThanOrEqual(998);
  });

  it("depends on the whole key: keys differing in one character get different addresses", () => {
    const k = "3ULvVWlUSqWmNt2/hAUdrW+BeKJMVs1AmBHfFtH9TRg=";
    const other = "4" + k.slice(1);
    expect(allocateMeshAddress(other)).not.toBe(allocateMeshAddress(k));
  });
});
