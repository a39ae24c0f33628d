// The registry is compiled once from the kinds' own declarations: the order desired state is
// built in (after the kinds a kind uses) and one total order of write phases. Inconsistent
// declarations are start-up errors, never a silently different plan.
import { describe, expect, it } from "vitest";
import { RegistryError, compileRegistry } from "../../src/core/registry.js";
import type { Reconciler } from "../../src/core/resource.js";
import { REGISTRY } from "../../reconcilers/registry.js";

const kind = (name: string, phases: Reconciler["phases"], uses?: string[]): Reconciler => ({
  kind: name,
  phases,
  uses,
  replaceOn: [],
  desired: () => ({ resources: [], diagnostics: [] }),
  read: async () => ({ resources: [], foreign: new Map() }),
  render: () => [],
});

describe("compileRegistry", () => {
  it("orders desired state after the kinds a kind uses, ties in registration order", () => {
    const r = compileRegistry([kind("a", { p: {} }, ["c"]), kind("b", { p: {} }), kind("c", { p: {} })]);
    expect(r.desiredOrder.map((k) => k.kind)).toEqual(["b", "c", "a"]);
    expect(r.kinds.map((k) => k.kind)).toEqual(["a", "b", "c"]);
  });

  it("orders phases by their declared `after`, own and other kinds'", () => {
    const r = compileRegistry([kind("a", { late: { after: ["b.first"] }, early: {} }), kind("b", { first: {}, second: { after: ["first"] } })]);
    const order = [...r.stages.entries()].sort((x, y) => x[1] - y[1]).map(([k]) => k);
    expect(order.indexOf("b.first")).toBeLessThan(order.indexOf("a.late"));
    expect(order.indexOf("b.first")).toBeLessThan(order.indexOf("b.second"));
    expect(r.stage("a", "late")).toBe(r.stages.get("a.late"));
    expect(() => r.stage("a", "nope")).toThrow(/does not declare/);
  });

  it("a uses cycle, an unregistered use, an undeclared phase and a phase cycle are start-up errors", () => {
    expect(() => compileRegistry([kind("a", { p: {} }, ["b"]), kind("b", { p: {} }, ["a"])])).toThrow(RegistryError);
    expect(() => compileRegistry([kind("a", { p: {} }, ["b"]), kind("b", { p: {} }, ["a"])])).toThrow(
      /^kind registry: kinds use each other in a cycle: (a → b → a|b → a → b)$/,
    );
    expect(() => compileRegistry([kind("a", { p: {} }, ["ghost"])])).toThrow(/kind "a" uses "ghost", which is not registered/);
    expect(() => compileRegistry([kind("a", { p: { after: ["b.nope"] } }), kind("b", { q: {} })])).toThrow(
      /phase "a.p" is ordered after "b.nope", which kind "b" does not declare/,
    );
    expect(() => compileRegistry([kind("a", { p: { after: ["b.q"] } }), kind("b", { q: { after: ["a.p"] } })])).toThrow(/write phases are ordered in a cycle/);
    expect(() => compileRegistry([kind("a", {})])).toThrow(/declares no phases/);
    expect(() => compileRegistry([kind("a", { p: {} }), kind("a", { p: {} })])).toThrow(/registered twice/);
  });

  it("a partial registry (tests of a few kinds) tolerates uses of absent kinds", () => {
    expect(compileRegistry([kind("a", { p: {} }, ["ghost"])], { partial: true }).desiredOrder.map((k) => k.kind)).toEqual(["a"]);
  });

  it("bolt's own registry: the write order every apply uses", () => {
    const order = [...REGISTRY.stages.entries()].sort((x, y) => x[1] - y[1]).map(([k]) => k);
    expect(order).toEqual([
      "endpoint.netns",
      "network.link",
      "endpoint.mark",
      "endpoint.port",
      "endpoint.unroute",
      "endpoint.inside",
      "wireguard.rt",
      "wireguard.dev",
      "wireguard.addr",
      "wireguard.conf",
      "wg-peer.peer",
      "rt-table.file",
      "route.route",
      "rule.rule",
      "nft.table",
      "docker-user.rules",
      "sysctl.write",
      "hosts.dir",
      "hosts.file",
      "resolver.file",
      "bgp.files",
      "bgp.daemon",
      "bgp.conf",
      "tc.ifb",
      "tc.clsact",
      "tc.shape",
      "tc.redirect",
      "ebpf.bpffs",
      "ebpf.pins",
      "ebpf.xdp",
      "ebpf.tc",
      "ebpf.unpin",
      "dhcp.files",
      "dhcp.daemon",
      "dhcp.reload",
    ]);
    expect(REGISTRY.desiredOrder.map((k) => k.kind)).toEqual([
      "network",
      "endpoint",
      "wireguard",
      "wg-peer",
      // a routing policy's table route (route) is derived from the policy (rule's fragment)
      "rule",
      "route",
      "rt-table",
      "hosts",
      // a namespace's hosts file is refused where the mesh's magic DNS (hosts) writes it
      "resolver",
      "bgp",
      "ebpf",
      // traffic rules' marks (nft) come from the tc kind's fragment
      "tc",
      "nft",
      "sysctl",
      "docker-user",
      // a DHCP host entry is an endpoint's lease (endpoint), its nameservers the network's dns (resolver)
      "dhcp",
    ]);
  });
});
