// The sweep that says whether two peers' allowed IPs overlap (every pass of a mesh host runs it)
// against the pairwise definition, on random peers: nested and disjoint prefixes, both families.
import { describe, expect, it } from "vitest";
import { anyOverlap } from "../../reconcilers/wireguard/intent.js";
import { overlaps } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { overlaps6, parseCidr6 } from "../../src/core/ipv6.js";

type Peer = { allowedIps: Cidr4[]; allowedIps6: string[] };

function pairwise(peers: Peer[]): boolean {
  for (let i = 0; i < peers.length; i++)
    for (let j = 0; j < i; j++) {
      if (peers[i]!.allowedIps.some((a) => peers[j]!.allowedIps.some((b) => a.prefix !== 0 && b.prefix !== 0 && overlaps(a, b)))) return true;
      for (const a of peers[i]!.allowedIps6)
        for (const b of peers[j]!.allowedIps6) {
          const ca = parseCidr6(a)!;
          const cb = parseCidr6(b)!;
          if (ca.prefix !== 0 && cb.prefix !== 0 && overlaps6(ca, cb)) return true;
        }
    }
  return false;
}

describe("allowed IP overlap between peers", () => {
  it("agrees with the pairwise check on 3000 random meshes", () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    let overlapping = 0;
    for (let k = 0; k < 3000; k++) {
      const peers: Peer[] = Array.from({ length: 1 + rnd(6) }, () => ({
        allowedIps: Array.from({ length: rnd(3) }, () => {
          const prefix = [0, 8, 16, 24, 30, 32][rnd(6)]!;
          const net = ((10 << 24) | (rnd(4) << 16) | (rnd(4) << 8) | rnd(8)) >>> 0;
          const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
          return { network: (net & mask) >>> 0, prefix };
        }),
        allowedIps6: Array.from({ length: rnd(2) }, () => [`fd7a::${rnd(4)}/128`, "fd7a::/120", "fd00::/8", "::/0", `fd7b::${rnd(3)}:0/112`][rnd(5)]!),
      }));
      const want = pairwise(peers);
      if (want) overlapping++;
      expect(anyOverlap(peers), JSON.stringify(peers)).toBe(want);
    }
    // both answers came up often
    expect(overlapping).toBeGreaterThan(300);
    expect(overlapping).toBeLessThan(2700);
  });

  it("a peer's own prefixes may nest; /0 (a full tunnel, an exit node) overlaps nothing", () => {
    const c = (network: number, prefix: number) => ({ network: network >>> 0, prefix });
    expect(anyOverlap([{ allowedIps: [c(0x0a000000, 8), c(0x0a000001, 32)] }])).toBe(false);
    expect(anyOverlap([{ allowedIps: [c(0, 0)] }, { allowedIps: [c(0x0a000001, 32)], allowedIps6: ["::/0"] }])).toBe(false);
    expect(anyOverlap([{ allowedIps: [c(0x0a000000, 24)] }, { allowedIps: [c(0x0a000005, 32)] }])).toBe(true);
  });
});
