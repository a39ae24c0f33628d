// [[firewall.rules]] and blocklists proven by traffic from the outside namespace: a deny rule
// closes one published port and leaves the other open, priority decides between rules, reject
// answers at once where deny stays silent, a rate-limited allow drops what is over its rate
// (the per-rule counters `bolt show --json` reports add up to the packets sent), and a source
// in a blocklist file is dropped before anything else sees it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, must, ping, requireBuild } from "./harness.js";
import { Topology, UPLINK, applyConverged, boltTable, counters, destroyClean } from "./nft-topology.js";

const BASE = `
[networks.front]
subnet = "10.71.0.0/24"

[[endpoints]]
name = "web"
network = "front"
ip = "10.71.0.10"

[[port_forwards]]
host_port = 8080
to = "web:80"

[[port_forwards]]
host_port = 8081
to = "web:81"

[[port_forwards]]
host_port = 8082
to = "web:82"
`;

const DENY_81 = `
[[firewall.rules]]
name = "no-81-from-uplink"
priority = 20
action = "deny"
protocol = "tcp"
dest_ports = 81
source = "198.51.100.0/24"
logging = true

[[firewall.rules]]
name = "reject-82"
action = "reject"
protocol = "tcp"
dest_ports = "82-82"
`;

describe.skipIf(!!SKIP_REASON)("nft: firewall rules, rate limits, blocklists", () => {
  const topo = new Topology();
  const sb = topo.sb;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    await applyConverged(sb, [sb.write("base.toml", BASE)]);
    for (const port of [80, 81, 82]) await topo.serveTcp(topo.ns("web"), port, `web-${port}`);
    // Without rules every forward answers: what the rules below take away is really there.
    for (const port of [80, 81, 82]) expect(await topo.tcp(topo.outside, UPLINK.host, 8000 + port)).toBe(`web-${port}`);
  });
  afterAll(() => topo.cleanup());

  it("a deny rule blocks its port only; reject answers at once; logging names the rule", async () => {
    await applyConverged(sb, [sb.write("deny.toml", BASE + DENY_81)]);
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBe("web-80");
    expect(await topo.tcp(topo.outside, UPLINK.host, 8081)).toBeUndefined();
    // reject = a TCP reset: nc gives up immediately instead of waiting out its 5 s timeout.
    const t0 = Date.now();
    expect(await topo.tcp(topo.outside, UPLINK.host, 8082, 5)).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(3000);
    const c = await counters(sb);
    expect(c["firewall rule:no-81-from-uplink"]).toBeGreaterThan(0);
    expect(c["firewall rule:reject-82"]).toBeGreaterThan(0);
    // The one check on rule text: nft's log statement with a prefix naming the rule.
    const table = (await boltTable(topo.host))!;
    expect(table).toContain('log prefix "bolt no-81-from-uplink: "');
    expect(table.match(/log prefix/g)).toHaveLength(1);
  });

  it("a lower priority number runs first: an allow at 10 beats the deny at 20", async () => {
    const allowOne = `
[[firewall.rules]]
name = "outside-may-81"
priority = 10
action = "allow"
protocol = "tcp"
dest_ports = 81
source = "${UPLINK.outside}"
`;
    await applyConverged(sb, [sb.write("prio.toml", BASE + DENY_81 + allowOne)]);
    expect(await topo.tcp(topo.outside, UPLINK.host, 8081)).toBe("web-81");
    // Priority 30 instead: the deny runs first and wins.
    await applyConverged(sb, [sb.write("prio2.toml", BASE + DENY_81 + allowOne.replace("priority = 10", "priority = 30"))]);
    expect(await topo.tcp(topo.outside, UPLINK.host, 8081)).toBeUndefined();
  });

  it("a rate-limited allow drops above its rate, and the counters show it", async () => {
    const budget = `
[[firewall.rules]]
name = "icmp-budget"
action = "allow"
protocol = "icmp"
source = "${UPLINK.outside}"
rate_limit = { packets_per_second = 10, burst_size = 5 }
`;
    await applyConverged(sb, [sb.write("rate.toml", BASE + budget)]);
    expect(await counters(sb)).toMatchObject({ "firewall rule:icmp-budget": 0, "firewall rule:icmp-budget:over-rate": 0 });
    // Echo requests to the host's own address take the input hook, where every packet is
    // evaluated (no established shortcut there), so each one meets the limit.
    const sent = 500;
    const t0 = Date.now();
    const received = await topo.flood(topo.outside, UPLINK.host, sent);
    const seconds = (Date.now() - t0) / 1000;
    const c = await counters(sb);
    const accepted = c["firewall rule:icmp-budget"]!;
    const dropped = c["firewall rule:icmp-budget:over-rate"]!;
    expect(accepted + dropped).toBe(sent);
    expect(accepted).toBe(received);
    expect(dropped).toBeGreaterThan(sent / 2);
    // 10 per second over the flood's duration plus the burst of 5 is all that may pass.
    expect(received).toBeLessThanOrEqual(Math.ceil(10 * (seconds + 1)) + 5);
    expect(received).toBeGreaterThanOrEqual(5);
  });

  it("a blocklisted source is dropped (before DNAT and the host's input)", async () => {
    sb.write("blocked.txt", `# the outside, among others\n203.0.113.0/24\n${UPLINK.outside}\n192.0.2.0/25   # trailing comment\n192.0.2.64/26\n`);
    const bl = `
[firewall.ddos]
blocklists = ["blocked.txt"]
`;
    await applyConverged(sb, [sb.write("bl.toml", BASE + bl)]);
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBeUndefined();
    expect(await topo.noReply(topo.outside, UPLINK.host)).toBe(true);
    expect((await counters(sb))["raw_pre blocklist:0"]).toBeGreaterThan(0);
    // A hand edit that swaps one element for another (same count) is drift bolt repairs.
    const nft = (...a: string[]) => must(["ip", "netns", "exec", topo.host, "nft", ...a]);
    await nft("delete", "element", "inet", "bolt", "blocklist0", `{ ${UPLINK.outside} }`);
    await nft("add", "element", "inet", "bolt", "blocklist0", "{ 198.51.100.99 }");
    expect(await ping(topo.outside, UPLINK.host)).toBe(true);
    const drift = await sb.planExit(sb.write("bl.toml", BASE + bl));
    expect(drift.code, drift.stdout).toBe(2);
    expect(drift.stdout).toContain("set blocklist0");
    await applyConverged(sb, [sb.write("bl.toml", BASE + bl)]);
    expect(await topo.noReply(topo.outside, UPLINK.host)).toBe(true);
    // The drop is in prerouting at priority raw, before conntrack: the outside's answers to an
    // endpoint are packets from a blocked source too.
    expect(await topo.noReply(topo.ns("web"), UPLINK.outside)).toBe(true);
    // Another list without the outside: everything answers again.
    sb.write("blocked.txt", "203.0.113.0/24\n");
    await applyConverged(sb, [sb.write("bl.toml", BASE + bl)]);
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBe("web-80");
    expect(await ping(topo.outside, UPLINK.host)).toBe(true);
    await destroyClean(sb);
  });
});
