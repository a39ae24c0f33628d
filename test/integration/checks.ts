// Kernel-side assertions shared by the integration tests: what a network or endpoint must
// look like when read back with `ip -j`, independent of what bolt says about itself.
import { expect } from "vitest";
import { ipJson } from "./harness.js";
import type { Json } from "./harness.js";

export interface NetworkExpect {
  name: string;
  bridge: string;
  /** gateway/prefix, e.g. 10.61.0.1/24 */
  address: string;
  mtu: number;
}

export async function link(ns: string, dev: string): Promise<Json> {
  const l = (await ipJson(ns, ["-d", "link", "show"])).find((x: Json) => x.ifname === dev);
  expect(l, `link ${dev} in ${ns}`).toBeDefined();
  return l;
}

async function v4(ns: string, dev: string): Promise<string[]> {
  const a = (await ipJson(ns, ["addr", "show", "dev", dev]))[0];
  return (a?.addr_info ?? []).filter((x: Json) => x.family === "inet").map((x: Json) => `${x.local}/${x.prefixlen}`);
}

/** A bolt bridge: kind, alias naming the network, exactly the gateway address, MTU, up. */
export async function expectNetwork(target: string, n: NetworkExpect): Promise<void> {
  const l = await link(target, n.bridge);
  expect(l.linkinfo?.info_kind).toBe("bridge");
  expect(l.ifalias).toBe(`bolt1,net=${n.name}`);
  expect(l.mtu).toBe(n.mtu);
  expect(l.flags).toContain("UP");
  expect(await v4(target, n.bridge)).toEqual([n.address]);
}

export interface VethExpect {
  name: string;
  hostIf: string;
  bridge: string;
  netns: string;
  /** ip/prefix inside */
  ip: string;
  gateway: string;
  mtu: number;
}

/** Host side on the bridge with its ownership alias; eth0 inside with address, MTU and default route. */
export async function expectVeth(target: string, e: VethExpect): Promise<void> {
  const host = await link(target, e.hostIf);
  expect(host.linkinfo?.info_kind).toBe("veth");
  expect(host.master).toBe(e.bridge);
  expect(host.mtu).toBe(e.mtu);
  expect(host.flags).toContain("UP");
  expect(host.ifalias).toMatch(new RegExp(`^bolt1,ep=${e.name},`));
  expect(host.ifalias).toContain(`ip=${e.ip}`);
  const eth0 = await link(e.netns, "eth0");
  expect(eth0.linkinfo?.info_kind).toBe("veth");
  expect(eth0.mtu).toBe(e.mtu);
  expect(eth0.flags).toContain("UP");
  expect(await v4(e.netns, "eth0")).toEqual([e.ip]);
  const routes = await ipJson(e.netns, ["-4", "route", "show", "default"]);
  expect(routes.map((r: Json) => ({ gateway: r.gateway, dev: r.dev }))).toEqual([{ gateway: e.gateway, dev: "eth0" }]);
}

/** A tap on the bridge, owned (alias), up. */
export async function expectTap(target: string, t: { name: string; hostIf: string; bridge: string; mtu: number }): Promise<void> {
  const l = await link(target, t.hostIf);
  expect(l.linkinfo?.info_kind).toBe("tun");
  expect(l.linkinfo?.info_data?.type).toBe("tap");
  expect(l.master).toBe(t.bridge);
  expect(l.mtu).toBe(t.mtu);
  expect(l.flags).toContain("UP");
  expect(l.ifalias).toMatch(new RegExp(`^bolt1,ep=${t.name},`));
}
