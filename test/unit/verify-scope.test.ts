// Verify after an apply re-reads the kinds it changed and the kinds of objects that depend on a
// changed one, transitively (src/core/apply.ts verifiedKinds): never fewer, or a write's effect
// on a dependent (an endpoint on a replaced bridge) would go unchecked.
import { describe, expect, it } from "vitest";
import { verifiedKinds } from "../../src/core/apply.js";
import type { Change, Resource } from "../../src/core/resource.js";
import { resource } from "./helpers/builders.js";

const dep = (kind: string, name: string, deps: string[]): Resource => resource(kind, name, {}, { deps });
const change = (kind: string, name: string): Change => ({ id: `${kind}:${name}`, kind, name, action: "update", changed: [], forcedBy: [] });

describe("verifiedKinds", () => {
  const desired = [
    dep("network", "a", []),
    dep("network", "b", []),
    dep("endpoint", "web", ["network:a"]),
    dep("resolver", "web/hosts", ["endpoint:web"]),
    dep("endpoint", "db", ["network:b"]),
    dep("sysctl", "net.ipv4.ip_forward", []),
    dep("nft", "table", ["network:b"]),
  ];

  it("a changed network brings its endpoints and, through them, their files", () => {
    expect([...verifiedKinds({ changes: [change("network", "a")], desired })].sort()).toEqual(["endpoint", "network", "resolver"]);
  });

  it("a change nothing depends on is verified alone", () => {
    expect([...verifiedKinds({ changes: [change("sysctl", "net.ipv4.ip_forward")], desired })]).toEqual(["sysctl"]);
  });

  it("a deleted object (not desired) still has its kind verified", () => {
    const del: Change = { ...change("endpoint", "gone"), action: "delete" };
    expect([...verifiedKinds({ changes: [del], desired })]).toEqual(["endpoint"]);
  });
});
