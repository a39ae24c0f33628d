// NAT and isolation proven by traffic. The outside namespace has no route to 10.0.0.0/8, so an
// endpoint's echo reaches it only if the host masquerades the endpoint's source address to
// its uplink address (the reply would otherwise have nowhere to go).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, must, ping, requireBuild, sysctlGet } from "./harness.js";
import { Topology, UPLINK, applyConverged, boltTable, destroyClean } from "./nft-topology.js";

const config = (opts: { frontInternet?: boolean; backIsolated?: boolean; frontIsolated?: boolean }) => `
[networks.front]
subnet = "10.71.0.0/24"
${opts.frontInternet === false ? "internet = false" : ""}
${opts.frontIsolated === false ? "isolated = false" : ""}

[networks.back]
subnet = "10.72.0.0/24"
${opts.backIsolated === false ? "isolated = false" : ""}

[[endpoints]]
name = "web"
network = "front"
ip = "10.71.0.10"

[[endpoints]]
name = "api"
network = "front"
ip = "10.71.0.11"

[[endpoints]]
name = "db"
network = "back"
ip = "10.72.0.10"
`;

describe.skipIf(!!SKIP_REASON)("nft: masquerade, internet = false, isolation, ip_forward", () => {
  const topo = new Topology();
  const sb = topo.sb;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    // The host namespace starts with forwarding off (a new namespace always does).
    expect(await sysctlGet(topo.host, "net.ipv4.ip_forward")).toBe("0");
  });
  afterAll(() => topo.cleanup());

  it("an endpoint reaches the outside only through masquerade; ip_forward is managed", async () => {
    const file = sb.write("nat.toml", config({}));
    await applyConverged(sb, [file]);
    expect(await sysctlGet(topo.host, "net.ipv4.ip_forward")).toBe("1");
    expect(await ping(topo.ns("web"), UPLINK.outside)).toBe(true);
    expect(await ping(topo.ns("db"), UPLINK.outside)).toBe(true);
    // The control: the same endpoint without masquerade (only bolt's nat_post chain gone) is
    // forwarded but never answered, because the outside cannot route to 10.71.0.10.
    const table = (await boltTable(topo.host))!;
    expect(table).toContain("masquerade");
    const chain = await must(["ip", "netns", "exec", topo.host, "nft", "-a", "list", "chain", "inet", "bolt", "nat_post"]);
    const handle = /masquerade comment "bolt:masquerade\|[0-9a-f]+" # handle (\d+)/.exec(chain)![1]!;
    await must(["ip", "netns", "exec", topo.host, "nft", "delete", "rule", "inet", "bolt", "nat_post", "handle", handle]);
    // conntrack still has the old (masqueraded) echo flow: a new ping id is a new flow.
    expect(await topo.noReply(topo.ns("api"), UPLINK.outside)).toBe(true);
    // bolt notices the hand edit as drift and repairs it.
    const p = await sb.planExit(file);
    expect(p.code, p.stdout).toBe(2);
    await applyConverged(sb, [file]);
    expect(await ping(topo.ns("api"), UPLINK.outside)).toBe(true);
  });

  it("endpoints on one network talk; on two isolated networks they cannot", async () => {
    expect(await ping(topo.ns("web"), "10.71.0.11")).toBe(true);
    expect(await ping(topo.ns("api"), "10.71.0.10")).toBe(true);
    expect(await topo.noReply(topo.ns("web"), "10.72.0.10")).toBe(true);
    expect(await topo.noReply(topo.ns("db"), "10.71.0.10")).toBe(true);
    // Both gateways are host addresses: isolation is about forwarding, not the host itself.
    expect(await ping(topo.ns("db"), "10.72.0.1")).toBe(true);
  });

  it("two networks that are both not isolated forward to each other", async () => {
    const file = sb.write("open.toml", config({ frontIsolated: false, backIsolated: false }));
    await applyConverged(sb, [file]);
    expect(await ping(topo.ns("web"), "10.72.0.10")).toBe(true);
    expect(await ping(topo.ns("db"), "10.71.0.11")).toBe(true);
    // One side isolated is enough to cut both directions.
    const half = sb.write("half.toml", config({ frontIsolated: false }));
    await applyConverged(sb, [half]);
    expect(await topo.noReply(topo.ns("web"), "10.72.0.10")).toBe(true);
    expect(await topo.noReply(topo.ns("db"), "10.71.0.11")).toBe(true);
  });

  it("internet = false: the endpoint reaches its network and gateway, nothing beyond", async () => {
    const file = sb.write("offline.toml", config({ frontInternet: false }));
    await applyConverged(sb, [file]);
    expect(await topo.noReply(topo.ns("web"), UPLINK.outside)).toBe(true);
    expect(await ping(topo.ns("web"), "10.71.0.11")).toBe(true);
    expect(await ping(topo.ns("web"), "10.71.0.1")).toBe(true);
    // The host's own uplink address is local to the host, not forwarded: still reachable.
    expect(await ping(topo.ns("web"), UPLINK.host)).toBe(true);
    // The other network keeps its internet.
    expect(await ping(topo.ns("db"), UPLINK.outside)).toBe(true);
    // back still needs forwarding: ip_forward stays on.
    expect(await sysctlGet(topo.host, "net.ipv4.ip_forward")).toBe("1");
  });

  it("destroy removes bolt's table and restores ip_forward", async () => {
    await destroyClean(sb);
    expect(await sysctlGet(topo.host, "net.ipv4.ip_forward")).toBe("0");
    expect(await sb.mine()).toEqual([topo.host, topo.outside]);
  });
});
