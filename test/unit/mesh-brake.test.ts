// The brake (issue 10, MULTIHOST.md §2.8): store-driven changes a host refuses.
import { describe, expect, it } from "vitest";
import { storeNode } from "./helpers/builders.js";
import { brake } from "../../reconcilers/wireguard/store-input.js";
import type { MeshSnapshot, NodeRecord } from "../../reconcilers/wireguard/store.js";

const node = (name: string, o: Partial<NodeRecord> = {}): NodeRecord => storeNode(name, { public_key: `${name.padEnd(43, "A")}=`, ...o });
const snap = (revision: string, names: string[], meshId = "m1", o: Record<string, Partial<NodeRecord>> = {}): MeshSnapshot => ({
  revision,
  meta: { v: 1, mesh_id: meshId, cidr4: "100.64.0.0/10", listen_port: 41641, keepalive: 25, created_at: "" },
  nodes: names.map((n) => node(n, o[n])),
  ipam: {},
  requests: {},
});

describe("brake", () => {
  const last = snap("10", ["self", "a", "b", "c", "d"]);
  it("nothing to compare with (a first start): no brake", () => {
    expect(brake(undefined, snap("1", ["self"]), "self")).toBeUndefined();
  });
  it("another mesh_id (a wiped or foreign store) and a lower revision (a restored backup) are refused", () => {
    expect(brake(last, snap("11", ["self", "a"], "m2"), "self")).toMatch(/now holds mesh_id m2, not m1/);
    expect(brake(last, snap("9", ["self", "a", "b", "c", "d"]), "self")).toMatch(/revision 9, behind the 10/);
  });
  it("removing more than half of this host's store peers at once is refused unless allowed; half or fewer pass", () => {
    expect(brake(last, snap("11", ["self", "a"]), "self")).toMatch(/remove 3 of this host's 4 store peers at once \(b, c, d\)/);
    expect(brake(last, snap("11", ["self", "a"]), "self", true)).toBeUndefined();
    expect(brake(last, snap("11", ["self", "a", "b"]), "self")).toBeUndefined();
    // Revoked and expired nodes count as removed; this host itself never counts.
    const revoked = snap("11", ["self", "a", "b", "c", "d"], "m1", {
      b: { state: "revoked" },
      c: { expires_at: "2000-01-01T00:00:00Z" },
      d: { state: "revoked" },
    });
    expect(brake(last, revoked, "self")).toMatch(/remove 3 of/);
    expect(brake(snap("10", ["self", "a"]), snap("11", ["self"]), "self")).toBeUndefined(); // one peer: nothing to brake
  });
});
