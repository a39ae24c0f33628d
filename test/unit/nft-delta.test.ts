// The delta script builder (reconcilers/nft/delta.ts): given the live table (parsed from an
// `nft -j list table` listing) and the desired table, the script writes only what changed, or
// says why the whole table must be replaced. Live listings come from the fake kernel's nft
// model (tableScript applied, then listed with handles), and every delta is applied back to it
// and re-read: the live spec must then equal the desired one (what makes a re-plan empty).
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { compileTable } from "../../reconcilers/nft/compile.js";
import type { NftTable } from "../../reconcilers/nft/compile.js";
import { tableDelta } from "../../reconcilers/nft/delta.js";
import { mergeCidrs, mergeCidrs6 } from "../../reconcilers/nft/family.js";
import { parseLive } from "../../reconcilers/nft/read.js";
import type { LiveShape } from "../../reconcilers/nft/read.js";
import { tableScript, tableSpec } from "../../reconcilers/nft/script.js";
import { parseCidr4 } from "../../src/core/ipv4.js";
import { parseCidr6 } from "../../src/core/ipv6.js";
import { nftJson, nftTransaction } from "./helpers/fake-kernel.js";
import type { NftTableState } from "./helpers/fake-kernel.js";
import { kinds } from "./helpers/builders.js";

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/nft/${name}`, import.meta.url));

function compiled(): NftTable {
  const { intent } = loadIntent([fixture("roundtrip.toml")], "bolt-t-x-");
  const endpointIps = new Map(kinds(intent).endpoints.map((e) => [e.name, e.ip!]));
  return compileTable({ nft: kinds(intent).nft!, networks: kinds(intent).networks, endpointIps })!;
}

/** The kernel holding `t` as tableScript writes it. */
function kernelWith(t: NftTable): NftTableState[] {
  const r = nftTransaction([], tableScript(t));
  if ("error" in r) throw new Error(r.error);
  return r.tables;
}

function apply(k: NftTableState[], script: string): NftTableState[] {
  const r = nftTransaction(k, script);
  if ("error" in r) throw new Error(r.error);
  return r.tables;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const listing = (k: NftTableState[]): { nftables: Json[] } => ({ nftables: nftJson(k.find((t) => t.name === "bolt")!) });
const shapeOf = (k: NftTableState[]): LiveShape => parseLive(listing(k) as Json).shape;
const specOf = (k: NftTableState[]) => parseLive(listing(k) as Json).table.spec;

function delta(k: NftTableState[], want: NftTable): string {
  const d = tableDelta(shapeOf(k), want);
  if (d.mode !== "delta") throw new Error(`expected a delta, got a whole-table write: ${d.reason}`);
  return d.script;
}

/** Applies the delta and checks the kernel then reads as desired, field for field. */
function converge(k: NftTableState[], want: NftTable): { k: NftTableState[]; script: string } {
  const script = delta(k, want);
  const after = apply(k, script);
  expect(specOf(after)).toEqual(tableSpec(want).spec);
  return { k: after, script };
}

/** The script's statements, an element list continued on tab-indented lines kept with its line. */
const body = (script: string) =>
  script
    .replace(/\n\t/g, " ")
    .split("\n")
    .filter((l) => l && !l.startsWith("#"));
const blocklist = (t: NftTable) => t.sets.find((s) => s.name === "blocklist0")!;
const chain = (t: NftTable, name: string) => t.chains.find((c) => c.name === name)!;
const withBlocklist = (t: NftTable, cidrs: string[]): NftTable => {
  const u = structuredClone(t);
  blocklist(u).elements = mergeCidrs(cidrs.map((c) => parseCidr4(c.includes("/") ? c : `${c}/32`)!));
  return u;
};
const BASE = ["203.0.113.0/24", "192.0.2.0/24", "198.18.0.1", "198.18.0.2", "198.18.0.3", "100.64.0.0/10"];

describe("nft delta script", () => {
  it("the recorded table reads back as what tableScript wrote (the starting point of every case)", () => {
    const t = compiled();
    expect(specOf(kernelWith(t))).toEqual(tableSpec(t).spec);
    expect(tableDelta(shapeOf(kernelWith(t)), t)).toEqual({ mode: "table", reason: "nothing differs chain by chain or set by set" });
  });

  it("one rule's text changed: that rule is replaced by its handle, nothing else is written", () => {
    const t = compiled();
    const k = kernelWith(t);
    const want = structuredClone(t);
    const rule = chain(want, "firewall").rules.find((r) => r.key === "rule:no-telnet")!;
    rule.text = rule.text.replace("dport 23", "dport 2323");
    const handle = shapeOf(k)
      .chains.find((c) => c.name === "firewall")!
      .rules.find((r) => r.key === "rule:no-telnet")!.handle;
    const { script } = converge(k, want);
    expect(body(script)).toEqual([
      expect.stringMatching(new RegExp(`^replace rule inet bolt firewall handle ${handle} tcp dport 2323 .*comment "bolt:rule:no-telnet\\|[0-9a-f]{8}"$`)),
    ]);
  });

  it("a rule added (or removed) in one chain: that chain alone is flushed and refilled", () => {
    const t = compiled();
    const k = kernelWith(t);
    const want = structuredClone(t);
    chain(want, "firewall").rules.splice(1, 0, { key: "rule:new", text: "tcp dport 9999 counter drop" });
    const { k: k2, script } = converge(k, want);
    const lines = body(script);
    expect(lines[0]).toBe("flush chain inet bolt firewall");
    expect(lines.slice(1).every((l) => l.startsWith("add rule inet bolt firewall "))).toBe(true);
    expect(lines.length).toBe(1 + chain(want, "firewall").rules.length);
    // and back: the rule removed
    const { script: back } = converge(k2, t);
    expect(body(back)[0]).toBe("flush chain inet bolt firewall");
    expect(body(back).filter((l) => !l.startsWith("add rule inet bolt firewall ")).length).toBe(1);
  });

  it("a blocklist element added, then removed: element lines only (added through `add set` of the set); the set's comment stays as created", () => {
    const t = withBlocklist(compiled(), BASE);
    const k = kernelWith(t);
    const more = withBlocklist(t, [...BASE, "198.51.100.99"]);
    const { k: k2, script } = converge(k, more);
    expect(body(script)).toEqual(["add set inet bolt blocklist0 { type ipv4_addr; flags interval; elements = { 198.51.100.99 } }"]);
    const again = withBlocklist(t, [...BASE, "198.51.100.99", "198.51.100.201"]);
    const { k: k3, script: s3 } = converge(k2, again);
    expect(body(s3)).toEqual(["add set inet bolt blocklist0 { type ipv4_addr; flags interval; elements = { 198.51.100.201 } }"]);
    // removed again: the kernel lists exactly what it did before the first delta, comments included
    const { k: k4, script: s4 } = converge(k3, t);
    expect(body(s4)).toEqual(["delete element inet bolt blocklist0 { 198.51.100.99, 198.51.100.201 }"]);
    expect(shapeOf(k4).sets.find((s) => s.name === "blocklist0")).toEqual(shapeOf(k).sets.find((s) => s.name === "blocklist0"));
  });

  it("an element that merges with a neighbour: the old element is deleted before the merged range is added", () => {
    const t = withBlocklist(compiled(), BASE);
    const k = kernelWith(t);
    // 198.18.0.1-198.18.0.3 + 198.18.0.4 → 198.18.0.1-198.18.0.4 (nft lists merged intervals this way)
    const want = withBlocklist(t, [...BASE, "198.18.0.4"]);
    expect(blocklist(want).elements).toContain("198.18.0.1-198.18.0.4");
    const { script } = converge(k, want);
    expect(body(script)).toEqual([
      "delete element inet bolt blocklist0 { 198.18.0.1-198.18.0.3 }",
      "add set inet bolt blocklist0 { type ipv4_addr; flags interval; elements = { 198.18.0.1-198.18.0.4 } }",
    ]);
  });

  it("IPv6 set elements in canonical form (prefixes as nft lists them)", () => {
    const t = compiled();
    const six = (xs: string[]) => mergeCidrs6(xs.map((x) => parseCidr6(x.includes("/") ? x : `${x}/128`)!));
    t.sets.push({ name: "blocklist0_6", decl: ["type ipv6_addr", "flags interval"], elements: six(["2001:db8::/48", "2001:db8:1::5"]), dynamic: false });
    chain(t, "raw_pre").rules.push({ key: "blocklist:0/6", text: "ip6 saddr @blocklist0_6 counter drop" });
    const k = kernelWith(t);
    const want = structuredClone(t);
    want.sets.find((s) => s.name === "blocklist0_6")!.elements = six(["2001:db8::/48", "2001:db8:1::5", "2001:db8:2::/64"]);
    const { script } = converge(k, want);
    expect(body(script)).toEqual(["add set inet bolt blocklist0_6 { type ipv6_addr; flags interval; elements = { 2001:db8:2::/64 } }"]);
  });

  it("bridges renamed: ifname and concatenated elements by delta", () => {
    const t = compiled();
    const k = kernelWith(t);
    const want = structuredClone(t);
    const rename = (e: string) => e.replaceAll('"lab0"', '"lab1"');
    for (const s of want.sets) s.elements = s.elements.map(rename).sort();
    const { script } = converge(k, want);
    expect(script).toContain('delete element inet bolt same_bridge { "lab0" . "lab0" }');
    expect(script).toContain('add set inet bolt same_bridge { type ifname . ifname; elements = { "lab1" . "lab1" } }');
    expect(script).not.toMatch(/rule/);
  });

  it("a hand edit is repaired by delta: an element replaced by hand, a rule added by hand", () => {
    const t = withBlocklist(compiled(), BASE);
    let k = kernelWith(t);
    k = apply(
      k,
      "delete element inet bolt blocklist0 { 198.18.0.1-198.18.0.3 }\nadd element inet bolt blocklist0 { 10.99.0.1 }\nadd rule inet bolt forward tcp dport 1 accept\n",
    );
    const spec = specOf(k);
    expect(spec["set blocklist0"]).not.toBe(tableSpec(t).spec["set blocklist0"]);
    expect(Object.values(spec)).toContain("unmanaged");
    const { script } = converge(k, t);
    expect(body(script)).toContain("delete element inet bolt blocklist0 { 10.99.0.1 }");
    expect(body(script)).toContain("flush chain inet bolt forward");
  });

  it("a changed shape is a whole-table write, with the reason", () => {
    const t = compiled();
    const k = kernelWith(t);
    const reason = (f: (u: NftTable) => void) => {
      const u = structuredClone(t);
      f(u);
      const d = tableDelta(shapeOf(k), u);
      return d.mode === "table" ? d.reason : "delta";
    };
    expect(reason((u) => u.sets.push({ name: "blocklist1", decl: ["type ipv4_addr", "flags interval"], elements: ["10.0.0.1"], dynamic: false }))).toBe(
      "set blocklist1 is added",
    );
    expect(reason((u) => u.sets.splice(u.sets.indexOf(blocklist(u)), 1))).toBe("set blocklist0 is removed");
    expect(reason((u) => u.chains.splice(u.chains.indexOf(chain(u, "segments")), 1))).toBe("chain segments is removed");
    expect(reason((u) => (chain(u, "raw_pre").base!.prio = -350))).toBe("chain raw_pre changes its type, hook or priority");
    expect(reason((u) => (blocklist(u).decl = ["type ipv4_addr"]))).toBe("set blocklist0 changes its type or flags");
    expect(reason((u) => (u.sets.find((s) => s.name === "ddos_syn")!.decl[1] = "size 1024"))).toBe("set ddos_syn changes its declaration");
    expect(reason((u) => (blocklist(u).elements = []))).toBe("set blocklist0 becomes empty");
    // a set bolt did not make (no bolt comment) in bolt's table
    const foreign = structuredClone(k);
    foreign.find((x) => x.name === "bolt")!.sets.find((s) => s.name === "blocklist0")!.comment = undefined;
    expect(tableDelta(shapeOf(foreign), withBlocklist(t, [...BASE, "10.0.0.9"]))).toEqual({ mode: "table", reason: "set blocklist0 is not bolt's" });
  });

  it("a live element bolt cannot name in a script makes the write whole-table", () => {
    const t = withBlocklist(compiled(), BASE);
    const shape = shapeOf(kernelWith(t));
    shape.sets.find((s) => s.name === "blocklist0")!.elements.push('{"weird": true}');
    expect(tableDelta(shape, withBlocklist(t, [...BASE, "10.0.0.9"]))).toEqual({ mode: "table", reason: "set blocklist0 holds an element bolt cannot name" });
  });
});
