// [[segments]] network_policies proven by traffic. Segment "game-seg" holds network games;
// "allow tcp:27015 from lobby" opens exactly that port through the isolation between two bolt
// networks, "deny all from external" shuts out everything not from a bolt subnet, and
// "deny tcp:80 to external" keeps the members off one outside service.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, must, ping, requireBuild } from "./harness.js";
import { Topology, UPLINK, applyConverged, destroyClean } from "./nft-topology.js";

const NETS = `
[networks.games]
subnet = "10.81.0.0/24"

[networks.lobby]
subnet = "10.82.0.0/24"

[networks.misc]
subnet = "10.83.0.0/24"

[[endpoints]]
name = "g1"
network = "games"
ip = "10.81.0.10"

[[endpoints]]
name = "l1"
network = "lobby"
ip = "10.82.0.10"

[[endpoints]]
name = "m1"
network = "misc"
ip = "10.83.0.10"
`;

const SEGMENT = `
[[segments]]
name = "game-seg"
members = ["gam*"]
network_policies = [
  "allow tcp:27015 from lobby",
  "deny all from external",
  "deny tcp:80 to external",
]
`;

describe.skipIf(!!SKIP_REASON)("nft: segment policies", () => {
  const topo = new Topology();
  const sb = topo.sb;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    // Only here: the outside gets a route into bolt's subnets, so "external" traffic can reach
    // the endpoints directly (no DNAT) and a policy is the only thing that can stop it.
    await must(["ip", "-n", topo.outside, "route", "add", "10.80.0.0/14", "via", UPLINK.host]);
    await applyConverged(sb, [sb.write("nets.toml", NETS)]);
    for (const ep of ["g1", "m1"]) for (const port of [27015, 27016]) await topo.serveTcp(topo.ns(ep), port, `${ep}-${port}`);
    await topo.serveTcp(topo.outside, 80, "outside-80");
    await topo.serveTcp(topo.outside, 443, "outside-443");
  });
  afterAll(() => topo.cleanup());

  it("without the segment: lobby is isolated from games, the outside reaches games", async () => {
    expect(await topo.tcp(topo.ns("l1"), "10.81.0.10", 27015, 1)).toBeUndefined();
    expect(await topo.tcp(topo.outside, "10.81.0.10", 27015)).toBe("g1-27015");
    expect(await topo.tcp(topo.ns("g1"), UPLINK.outside, 80)).toBe("outside-80");
  });

  it("allow tcp:27015 from lobby opens that port only", async () => {
    await applyConverged(sb, [sb.write("seg.toml", NETS + SEGMENT)]);
    expect(await topo.tcp(topo.ns("l1"), "10.81.0.10", 27015)).toBe("g1-27015");
    expect(await topo.tcp(topo.ns("l1"), "10.81.0.10", 27016, 1)).toBeUndefined();
    expect(await topo.noReply(topo.ns("l1"), "10.81.0.10")).toBe(true);
    // Not the other way round: the policy is about traffic into the segment.
    expect(await topo.tcp(topo.ns("g1"), "10.82.0.10", 27015, 1)).toBeUndefined();
    // Not for misc, which is no member: lobby stays isolated from it.
    expect(await topo.tcp(topo.ns("l1"), "10.83.0.10", 27015, 1)).toBeUndefined();
  });

  it("deny all from external shuts the outside out of the segment only", async () => {
    expect(await topo.tcp(topo.outside, "10.81.0.10", 27015, 1)).toBeUndefined();
    expect(await topo.noReply(topo.outside, "10.81.0.10")).toBe(true);
    expect(await topo.tcp(topo.outside, "10.83.0.10", 27015)).toBe("m1-27015");
    // Members still start connections outwards (the answers are established traffic)…
    expect(await ping(topo.ns("g1"), UPLINK.outside)).toBe(true);
    expect(await topo.tcp(topo.ns("g1"), UPLINK.outside, 443)).toBe("outside-443");
    // …except to tcp port 80: "deny tcp:80 to external".
    expect(await topo.tcp(topo.ns("g1"), UPLINK.outside, 80, 1)).toBeUndefined();
    expect(await topo.tcp(topo.ns("m1"), UPLINK.outside, 80)).toBe("outside-80");
  });

  it("destroy removes the policies with the table", async () => {
    await destroyClean(sb);
    expect(await sb.mine()).toEqual([topo.host, topo.outside]);
  });
});
