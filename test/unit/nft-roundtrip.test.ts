// compileTable → tableSpec (what bolt wants) against parseTable of the kernel's own listing
// (fixtures/nft/roundtrip.nft.json, recorded by test/integration/nft-roundtrip.test.ts after a
// real apply of fixtures/nft/roundtrip.toml): the two must be identical field by field, or
// every plan after an apply would show changes. Plus what parseTable makes of drift, and
// determinism of the compiled text.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { compileTable, mergeCidrs } from "../../reconcilers/nft/compile.js";
import type { NftTable } from "../../reconcilers/nft/compile.js";
import { parseTable } from "../../reconcilers/nft/read.js";
import { tableScript, tableSpec } from "../../reconcilers/nft/script.js";
import { parseCidr4 } from "../../src/core/ipv4.js";
import { kinds } from "./helpers/builders.js";

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/nft/${name}`, import.meta.url));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function compiled(): NftTable {
  const { intent } = loadIntent([fixture("roundtrip.toml")], "bolt-t-x-");
  const endpointIps = new Map(kinds(intent).endpoints.map((e) => [e.name, e.ip!]));
  return compileTable({ nft: kinds(intent).nft!, networks: kinds(intent).networks, endpointIps })!;
}

const recorded = (): Json => JSON.parse(readFileSync(fixture("roundtrip.nft.json"), "utf8"));

describe("nft round trip: parseTable(recorded kernel listing) = tableSpec(compiled)", () => {
  it("every field is identical", () => {
    const want = tableSpec(compiled()).spec;
    const live = parseTable(recorded());
    expect(live.spec).toEqual(want);
    // Nothing trivial: all features are in there.
    const keys = Object.keys(want);
    for (const k of [
      "set blocklist0",
      "set ddos_syn",
      "set ddos_conn",
      "set ddos_pkt",
      "raw_pre blocklist:0",
      "ddos syn-flood",
      "firewall rule:dns-budget:over-rate",
      "firewall rule:gaming-minecraft",
      "segments segment:game-seg:4",
      "nat_pre port-forward:tcp:198.51.100.1:2222",
      "nat_post masquerade",
      "forward no-internet",
      "forward isolation-out",
      "set isolated",
      "set no_internet",
      "set internet_nets",
      "set same_bridge",
    ])
      expect(keys).toContain(k);
    // Per-network behaviour lives in set membership, not in per-network rules.
    const t = compiled();
    const elems = (name: string) => t.sets.find((x) => x.name === name)!.elements;
    expect(elems("isolated")).toContain('"bolt-front"');
    expect(elems("isolated")).not.toContain('"lab0"');
    expect(elems("no_internet")).toContain('"bolt-back"');
    expect(elems("internet")).not.toContain('"bolt-back"');
  });

  it("counters are read per rule, and only for rules that count", () => {
    const live = parseTable(recorded());
    expect(live.counters["firewall rule:no-telnet"]).toBe("0 packets, 0 bytes");
    expect(live.counters["raw_pre blocklist:0"]).toBe("0 packets, 0 bytes");
    expect(live.counters["forward established"]).toBeUndefined();
    expect(Object.keys(live.counters).every((k) => k in live.spec)).toBe(true);
  });

  it("drift shows in exactly the fields it touches", () => {
    const want = tableSpec(compiled()).spec;
    const j = recorded();
    const rules = j.nftables.filter((i: Json) => i.rule);
    // A rule edited by hand keeps bolt's comment but not its hash…
    const edited = rules.find((i: Json) => i.rule.comment?.startsWith("bolt:rule:no-telnet|"));
    edited.rule.comment = edited.rule.comment.replace(/\|[0-9a-f]{8}$/, "|00000000");
    // …a rule without bolt's comment was added by hand (drift to remove)…
    j.nftables.push({ rule: { family: "inet", table: "bolt", chain: "forward", handle: 999, expr: [{ accept: null }] } });
    // …and a rule deleted by hand is missing from the order.
    j.nftables = j.nftables.filter((i: Json) => !i.rule?.comment?.startsWith("bolt:masquerade|"));
    const live = parseTable(j).spec;
    const diff = Object.keys({ ...want, ...live })
      .filter((k) => want[k] !== live[k])
      .sort();
    expect(diff).toEqual(["firewall rule:no-telnet", "forward order", "forward unmanaged#999", "nat_post masquerade", "nat_post order"]);
    expect(live["forward unmanaged#999"]).toBe("unmanaged");
  });

  it("a set without bolt's comment is foreign, a changed element list changes the set's hash", () => {
    const want = tableSpec(compiled()).spec;
    const j = recorded();
    const bl = j.nftables.find((i: Json) => i.set?.name === "blocklist0").set;
    bl.elem.pop();
    const bridges = j.nftables.find((i: Json) => i.set?.name === "bridges").set;
    delete bridges.comment;
    const live = parseTable(j).spec;
    // Elements are compared through the count and the comment's hash of the desired list:
    // one element fewer shows as a different count.
    expect(live["set blocklist0"]).not.toBe(want["set blocklist0"]);
    expect(live["set bridges"]).toBe("foreign");
  });

  it("an element replaced by hand (same count) is drift too", () => {
    const want = tableSpec(compiled()).spec;
    const j = recorded();
    const bl = j.nftables.find((i: Json) => i.set?.name === "blocklist0").set;
    bl.elem[0] = { prefix: { addr: "100.64.0.0", len: 11 } };
    const br = j.nftables.find((i: Json) => i.set?.name === "bridges").set;
    br.elem[0] = "lab1";
    const live = parseTable(j).spec;
    // The live elements' own hash, not the comment's: a changed element is a different spec.
    for (const set of ["set blocklist0", "set bridges"]) {
      expect(live[set]).toMatch(/^\d+ elements [0-9a-f]{8}$/);
      expect(live[set]).not.toBe(want[set]);
      expect(live[set]!.split(" ")[0]).toBe(want[set]!.split(" ")[0]);
    }
    expect(live["set bolt_nets"]).toBe(want["set bolt_nets"]);
  });

  it("the same config compiles to the same text, byte for byte", () => {
    expect(tableScript(compiled())).toBe(tableScript(compiled()));
    const spec = tableSpec(compiled());
    expect(spec.display["forward order"]).toBe(tableSpec(compiled()).display["forward order"]);
  });

  it("blocklist entries are merged into disjoint elements", () => {
    const c = (s: string) => parseCidr4(s)!;
    expect(
      mergeCidrs([
        c("203.0.113.0/24"),
        c("203.0.113.128/25"),
        c("192.0.2.0/25"),
        c("192.0.2.128/25"),
        c("198.18.0.1/32"),
        c("198.18.0.2/32"),
        c("198.18.0.3/32"),
      ]),
    ).toEqual(["192.0.2.0/24", "198.18.0.1-198.18.0.3", "203.0.113.0/24"]);
    expect(mergeCidrs([c("0.0.0.0/0"), c("10.0.0.0/8")])).toEqual(["0.0.0.0/0"]);
    expect(mergeCidrs([c("255.255.255.255/32"), c("255.255.255.254/32")])).toEqual(["255.255.255.254/31"]);
  });
});
