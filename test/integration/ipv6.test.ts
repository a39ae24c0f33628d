// Dual-stack networks proven by IPv6 traffic: endpoints on two bridges with both families,
// IPAM leasing IPv6 sequentially and durably, NAT66 to an outside that has no route back,
// "routed" IPv6 (no NAT: works only once the outside routes the prefix back), a port forward
// answered over IPv6 from the outside, isolation, a deny rule and a blocklist of one family
// leaving the other untouched, and a destroy that leaves the namespace as it was.
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, ipJson, must, requireBuild, snapshot, sysctlGet } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";
import { Topology, UPLINK, UPLINK6, applyConverged, boltTable, destroyClean } from "./nft-topology.js";
import { pingUntil } from "./mesh-topology.js";

/** A positive reachability check that tolerates a loaded machine (first NDP resolution, a slow pass): up to 5 echoes. */
const reach = (ns: string, ip: string) => pingUntil(ns, ip, 5);

const config = (o: { frontInternet?: string; rules?: string; ddos?: string; extra?: string } = {}) => `
[networks.front]
subnet = "10.71.0.0/24"
ipv6 = { subnet = "fd71::/64"${o.frontInternet ? `, internet = ${o.frontInternet}` : ""} }

[networks.back]
subnet = "10.72.0.0/24"
ipv6 = { subnet = "fd72::/64", gateway = "fd72::1", ip_range = { start = "fd72::100", end = "fd72::1ff" } }

[[endpoints]]
name = "web"
network = "front"
ip6 = "fd71::10"

[[endpoints]]
name = "api"
network = "front"

[[endpoints]]
name = "db"
network = "back"
${o.extra ?? ""}
[[port_forwards]]
host_port = 8080
to = "web:80"

${o.rules || o.ddos ? "[firewall]" : ""}
${o.rules ?? ""}
${o.ddos ?? ""}
`;

/** The global IPv6 addresses on eth0 of NS, with their flags (tentative = still in DAD). */
async function eth0v6(ns: string): Promise<Json[]> {
  const [link] = (await ipJson(ns, ["-6", "addr", "show", "dev", "eth0"])) as Json[];
  return (link?.addr_info ?? []).filter((a: Json) => a.scope === "global");
}

/** Neighbour entries of NS that are not on the uplink (the test's own traffic leaves those). */
async function neighbours(ns: string): Promise<Json[]> {
  return ((await ipJson(ns, ["neigh", "show"])) as Json[]).filter((n) => n.dev !== "up0").map((n) => ({ dst: n.dst, dev: n.dev }));
}

describe.skipIf(!!SKIP_REASON)("IPv6: dual-stack networks, IPAM, NAT66, routed, port forward, isolation, rules, blocklist", () => {
  const topo = new Topology();
  const sb = topo.sb;
  let before: Snapshot;
  let neighBefore: Json[];

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    await topo.buildV6();
    before = await snapshot(topo.host);
    neighBefore = await neighbours(topo.host);
    expect(await sysctlGet(topo.host, "net.ipv6.conf.all.forwarding")).toBe("0");
  });
  afterAll(() => topo.cleanup());

  it("both families on bridges and endpoints; leases are sequential; no address left tentative", async () => {
    await applyConverged(sb, [sb.write("ds.toml", config())]);
    expect(await sysctlGet(topo.host, "net.ipv6.conf.all.forwarding")).toBe("1");
    const addrs = async (ns: string) => (await eth0v6(ns)).map((a) => `${a.local}/${a.prefixlen}`);
    expect(await addrs(topo.ns("web"))).toEqual(["fd71::10/64"]);
    // The first free address after the gateway (fd71::1), in order — not random.
    expect(await addrs(topo.ns("api"))).toEqual(["fd71::2/64"]);
    expect(await addrs(topo.ns("db"))).toEqual(["fd72::100/64"]);
    for (const ep of ["web", "api", "db"]) {
      expect((await eth0v6(topo.ns(ep))).some((a) => a.tentative)).toBe(false);
      const routes = (await ipJson(topo.ns(ep), ["-6", "route", "show", "default"])) as Json[];
      expect(routes.map((r) => r.gateway)).toEqual([ep === "db" ? "fd72::1" : "fd71::1"]);
    }
    const br = (await ipJson(topo.host, ["-6", "addr", "show", "dev", "bolt-front"])) as Json[];
    // The gateway and bolt's one link-local address (addrgenmode none: the kernel adds none), neither tentative.
    expect(br[0].addr_info.map((a: Json) => [a.local, !!a.tentative])).toEqual([
      ["fd71::1", false],
      ["fe80::1", false],
    ]);
  });

  it("IPv6 between endpoints and to the gateway; isolation between networks holds for IPv6", async () => {
    expect(await reach(topo.ns("web"), "fd71::2")).toBe(true);
    expect(await reach(topo.ns("api"), "fd71::10")).toBe(true);
    expect(await reach(topo.ns("web"), "fd71::1")).toBe(true);
    expect(await reach(topo.ns("db"), "fd72::1")).toBe(true);
    expect(await topo.noReply(topo.ns("web"), "fd72::100")).toBe(true);
    expect(await topo.noReply(topo.ns("db"), "fd71::10")).toBe(true);
  });

  it("NAT66: an endpoint reaches an outside that has no route back, only through masquerade", async () => {
    expect(await reach(topo.ns("web"), UPLINK6.outside)).toBe(true);
    // The control: without bolt's masquerade6 rule the echo is forwarded but never answered.
    const chain = await must(["ip", "netns", "exec", topo.host, "nft", "-a", "list", "chain", "inet", "bolt", "nat_post"]);
    const handle = /masquerade comment "bolt:masquerade6\|[0-9a-f]+" # handle (\d+)/.exec(chain)![1]!;
    await must(["ip", "netns", "exec", topo.host, "nft", "delete", "rule", "inet", "bolt", "nat_post", "handle", handle]);
    expect(await topo.noReply(topo.ns("api"), UPLINK6.outside)).toBe(true);
    // IPv4 masquerade is its own rule: untouched.
    expect(await reach(topo.ns("api"), UPLINK.outside)).toBe(true);
    const p = await sb.planExit(sb.write("ds.toml", config()));
    expect(p.code, p.stdout).toBe(2);
    await applyConverged(sb, [sb.write("ds.toml", config())]);
    expect(await reach(topo.ns("api"), UPLINK6.outside)).toBe(true);
    // The reply is forwarded to api: the host must solicit api's address itself, which the kernel
    // does only from a link-local address of the bridge. With its neighbour entries gone (as
    // they go on their own), the very next echo is answered — not once api happens to ask.
    for (const dev of ["bolt-front", "bolt-back"]) {
      const [br] = (await ipJson(topo.host, ["-6", "addr", "show", "dev", dev])) as Json[];
      expect((br!.addr_info as Json[]).filter((a) => a.scope === "link").map((a) => `${a.local}/${a.prefixlen}`)).toEqual(["fe80::1/64"]);
    }
    await must(["ip", "-n", topo.host, "-6", "neigh", "flush", "dev", "bolt-front"]);
    expect(await pingUntil(topo.ns("api"), UPLINK6.outside, 2)).toBe(true);
  });

  it("a port forward to an endpoint on a dual-stack network answers over both families", async () => {
    await topo.serveTcp(topo.ns("web"), 80, "web-80", "::");
    expect(await topo.tcp(topo.outside, UPLINK6.host, 8080)).toBe("web-80");
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBe("web-80");
    // Nothing else is published, and the outside cannot reach the endpoint directly.
    expect(await topo.tcp(topo.outside, UPLINK6.host, 8081, 1)).toBeUndefined();
    expect(await topo.tcp(topo.outside, "fd71::10", 80, 1)).toBeUndefined();
  });

  it('internet = "routed": forwarded with the endpoint\'s own address, answered once the outside routes the prefix back', async () => {
    await applyConverged(sb, [sb.write("routed.toml", config({ frontInternet: '"routed"' }))]);
    // Only back's prefix is still NATed. (An element delta leaves the set's hash on one element's
    // comment — nft cannot change a set's comment in place: the elements are compared without it.)
    expect(/set internet_nets6 \{[^}]*elements = \{ ([^}]*) \}/.exec((await boltTable(topo.host))!)?.[1]?.replace(/ comment "bolt:[0-9a-f]{8}"/g, "")).toBe(
      "fd72::/64",
    );
    expect(await topo.noReply(topo.ns("web"), UPLINK6.outside)).toBe(true);
    await must(["ip", "-n", topo.outside, "-6", "route", "add", "fd71::/64", "via", UPLINK6.host]);
    try {
      expect(await reach(topo.ns("web"), UPLINK6.outside)).toBe(true);
    } finally {
      await must(["ip", "-n", topo.outside, "-6", "route", "del", "fd71::/64", "via", UPLINK6.host]);
    }
    // internet = false: no IPv6 out at all, IPv4 still masqueraded.
    await applyConverged(sb, [sb.write("no6.toml", config({ frontInternet: "false" }))]);
    expect(await topo.noReply(topo.ns("web"), UPLINK6.outside)).toBe(true);
    expect(await reach(topo.ns("web"), UPLINK.outside)).toBe(true);
  });

  it("a deny rule on an IPv6 source stops that family only; a v6 blocklist drops its sources only", async () => {
    const rules = `
[[firewall.rules]]
name = "web-no-v6-out"
action = "deny"
source = "fd71::10"
destination = "external"
`;
    await applyConverged(sb, [sb.write("deny.toml", config({ rules }))]);
    expect(await topo.noReply(topo.ns("web"), UPLINK6.outside)).toBe(true);
    expect(await reach(topo.ns("web"), UPLINK.outside)).toBe(true);
    expect(await reach(topo.ns("api"), UPLINK6.outside)).toBe(true);
    // Neighbour discovery is not filtered by such rules: the gateway still answers web.
    expect(await reach(topo.ns("web"), "fd71::1")).toBe(true);

    sb.write("bl.txt", `# the outside's IPv6 address, and a range\n${UPLINK6.outside}\n2001:db8:99::/48\n`);
    const ddos = `[firewall.ddos]\nsyn_flood_protection = true\nconnection_rate_limit = 100\npacket_rate_limit = 10000\nblocklists = ["bl.txt"]\n`;
    await applyConverged(sb, [sb.write("bl.toml", config({ ddos }))]);
    expect(await topo.tcp(topo.outside, UPLINK6.host, 8080, 1)).toBeUndefined();
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBe("web-80");
    // The per-source DDoS limits exist for IPv6 too (keyed by /64) and leave ordinary traffic alone.
    const table = (await boltTable(topo.host))!;
    for (const set of ["ddos_syn6", "ddos_conn6", "ddos_pkt6"]) expect(table).toContain(`set ${set} {`);
    expect(table).toContain("ip6 saddr & ffff:ffff:ffff:ffff:: limit rate over 50/second");
    // (The outside is blocklisted now: its replies too. The host itself passes the input chain's limits.)
    expect(await reach(topo.ns("api"), "fd71::1")).toBe(true);
  });

  it("leases survive a lost state dir (recovered from the kernel); a new endpoint takes the next address", async () => {
    await applyConverged(sb, [sb.write("ds.toml", config())]);
    for (const f of readdirSync(sb.stateDir)) rmSync(join(sb.stateDir, f), { recursive: true, force: true });
    const p = await sb.planExit(sb.write("ds.toml", config()));
    expect(p.code, p.stdout).toBe(0);
    await applyConverged(sb, [sb.write("more.toml", config({ extra: '\n[[endpoints]]\nname = "cache"\nnetwork = "front"\n' }))]);
    expect((await eth0v6(topo.ns("cache"))).map((a) => a.local)).toEqual(["fd71::3"]);
    expect((await eth0v6(topo.ns("api"))).map((a) => a.local)).toEqual(["fd71::2"]);
  });

  it("destroy leaves the namespace as it was, IPv6 routes and neighbours included", async () => {
    await destroyClean(sb);
    expect(await snapshot(topo.host)).toEqual(before);
    expect(await neighbours(topo.host)).toEqual(neighBefore);
    expect(await sysctlGet(topo.host, "net.ipv6.conf.all.forwarding")).toBe("0");
  });
});
