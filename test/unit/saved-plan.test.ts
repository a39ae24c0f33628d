// Saved plans: the fingerprint of the live state a plan was made against decides whether
// `bolt apply plan.json` may run it; it must move with state and ignore what is not state.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { digestValue, fingerprint, liveDrift, liveEntries, readSavedPlan, toSavedPlan, writeSavedPlan } from "../../src/core/saved-plan.js";
import type { Plan } from "../../src/core/plan.js";
import type { Resource } from "../../src/core/resource.js";
import { emptyIntent } from "../../src/core/intent.js";

const res = (id: string, spec: Record<string, string>, extra: Partial<Resource> = {}): Resource => {
  const [kind, name] = id.split(":") as [string, string];
  return { kind, name, id, keys: [], spec, deps: [], owned: true, ...extra };
};

const net = res("network:web", { bridge: "bolt-web", address: "10.1.0.1/24", mtu: "1500" });
const nft = res("nft:inet bolt", { "chain forward": "abc" }, { data: { counters: { "forward x": "1 packets, 60 bytes" } } });
const sys = res("sysctl:net.ipv4.ip_forward", { value: "0" }, { owned: false });

describe("saved plan fingerprint", () => {
  it("is independent of read order and of field order", () => {
    const a = fingerprint(liveEntries([net, nft, sys]));
    const b = fingerprint(liveEntries([sys, { ...net, spec: { mtu: "1500", address: "10.1.0.1/24", bridge: "bolt-web" } }, nft]));
    expect(a).toBe(b);
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("ignores counters and other data; moves with any spec value, ownership or object", () => {
    const base = fingerprint(liveEntries([net, nft, sys]));
    expect(fingerprint(liveEntries([net, { ...nft, data: { counters: { "forward x": "99 packets, 6000 bytes" } } }, sys]))).toBe(base);
    expect(fingerprint(liveEntries([{ ...net, spec: { ...net.spec, mtu: "1400" } }, nft, sys]))).not.toBe(base);
    expect(fingerprint(liveEntries([net, nft, { ...sys, owned: true }]))).not.toBe(base);
    expect(fingerprint(liveEntries([net, nft]))).not.toBe(base);
  });

  it("a sensitive value enters as its digest, so an exported state (digests only) fingerprints the same", () => {
    const wg = res("wgpeer:a", { preshared_key: "c2VjcmV0", port: "51820" }, { sensitive: ["preshared_key"] });
    const exported = { ...wg, spec: { ...wg.spec, preshared_key: digestValue("c2VjcmV0") } };
    expect(fingerprint(liveEntries([wg]))).toBe(fingerprint(liveEntries([exported])));
    expect(JSON.stringify(liveEntries([wg]))).not.toContain("c2VjcmV0");
  });

  it("says what changed", () => {
    const then = liveEntries([net, sys]);
    const now = liveEntries([{ ...net, spec: { ...net.spec, mtu: "9000" } }, nft]);
    expect(liveDrift(then, now)).toEqual(["network:web changed mtu (1500 → 9000)", "sysctl:net.ipv4.ip_forward is gone", "nft:inet bolt appeared"]);
    expect(liveDrift(then, then)).toEqual([]);
  });
});

describe("saved plan file", () => {
  const dir = mkdtempSync(join(tmpdir(), "bolt-saved-"));
  const plan: Plan = {
    target: "t",
    changes: [{ id: "network:web", kind: "network", name: "web", action: "create", after: net, changed: [], forcedBy: [] }],
    steps: [],
    diagnostics: [],
    desired: [net],
    before: [sys],
    touched: [],
    readBack: new Map(),
  };

  it("round-trips", () => {
    const p = join(dir, "plan.json");
    writeSavedPlan(p, toSavedPlan(plan, emptyIntent(["a.toml"]), { deep: false, destroy: false }));
    const back = readSavedPlan(p);
    expect(back.changes).toEqual([{ action: "create", address: "network:web" }]);
    expect(back.desired).toEqual([net]);
    expect(back.fingerprint).toBe(fingerprint(liveEntries([sys])));
    expect(back.target).toBe("t");
  });

  it("refuses what is not a saved plan, with the way to make one", () => {
    const bad = join(dir, "x.json");
    writeFileSync(bad, "{}");
    expect(() => readSavedPlan(bad)).toThrow(/not a saved plan.*bolt plan --out/);
    writeFileSync(bad, "not json");
    expect(() => readSavedPlan(bad)).toThrow(/not a saved plan/);
    writeFileSync(bad, JSON.stringify({ format: "bolt-plan", format_version: 99 }));
    expect(() => readSavedPlan(bad)).toThrow(/format_version 99 is not supported/);
    expect(() => readSavedPlan(join(dir, "missing.json"))).toThrow(/cannot read saved plan .*ENOENT/);
  });
});
