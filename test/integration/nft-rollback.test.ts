// A failure in a step AFTER the nft transaction (the sysctl stage, or the DOCKER-USER inserts
// that run right after the table in the same batch) rolls bolt's table back exactly: absent
// again after a failed first apply, the previous table (`nft -s list table inet bolt`, i.e.
// without counters) after a failed update. The fake tool dumps bolt's table at the moment it
// fails, which proves the new table really was in the kernel before the rollback.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, must, requireBuild, snapshot, sysctlGet } from "./harness.js";
import type { Snapshot } from "./harness.js";
import { Topology, applyConverged, boltTable, failingToolEnv } from "./nft-topology.js";

const A = `
[networks.front]
subnet = "10.71.0.0/24"

[[endpoints]]
name = "web"
network = "front"
ip = "10.71.0.10"

[[port_forwards]]
host_port = 8080
to = "web:80"

[[firewall.rules]]
name = "no-telnet"
action = "deny"
protocol = "tcp"
dest_ports = 23

[firewall.ddos]
syn_flood_protection = true
blocklists = ["blocked.txt"]
`;

// B changes every part of the table and adds a sysctl (written after the table).
const B =
  A.replace("dest_ports = 23", 'dest_ports = "23-25"\nlogging = true').replace("host_port = 8080", "host_port = 9090") +
  `
[[firewall.rules]]
name = "icmp-budget"
action = "allow"
protocol = "icmp"
rate_limit = { packets_per_second = 5 }

[sysctl]
"net.ipv4.ip_default_ttl" = 63
`;

describe.skipIf(!!SKIP_REASON)("nft: rollback after a failure later than the nft transaction", () => {
  const topo = new Topology();
  const sb = topo.sb;
  let pristine: Snapshot;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    sb.write("blocked.txt", "203.0.113.0/24\n192.0.2.0/24\n");
    pristine = await snapshot(topo.host);
  });
  afterAll(() => topo.cleanup());

  it("a failed first apply leaves no bolt table (and nothing else) behind", async () => {
    const file = sb.write("a.toml", A);
    const dump = join(sb.dir, "dump-first");
    // ip_forward (implied by internet and the port forward) is the sysctl written after the table.
    const r = await sb.bolt(["apply", "-f", file], { env: failingToolEnv(sb, "sysctl", "-w", dump) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("sysctl: injected fault");
    expect(r.stderr).toContain("rolled back");
    // At the failure the table was there, with the new content…
    expect(readFileSync(dump, "utf8")).toContain('comment "bolt:rule:no-telnet|');
    // …and now it is gone, like everything else bolt made.
    expect(await boltTable(topo.host)).toBeUndefined();
    expect(await snapshot(topo.host)).toEqual(pristine);
    expect(await sysctlGet(topo.host, "net.ipv4.ip_forward")).toBe("0");
    expect(await sb.mine()).toEqual([topo.host, topo.outside]);
    expect((await sb.planExit(file)).code).toBe(2);
  });

  it("a failed update restores the previous table exactly", async () => {
    const a = sb.write("a.toml", A);
    await applyConverged(sb, [a]);
    const before = (await boltTable(topo.host, true))!;
    const snapBefore = await snapshot(topo.host);
    const b = sb.write("b.toml", B);
    const dump = join(sb.dir, "dump-update");
    const r = await sb.bolt(["apply", "-f", b], { env: failingToolEnv(sb, "sysctl", "-w", dump) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("rolled back");
    const during = readFileSync(dump, "utf8");
    expect(during).toContain('log prefix "bolt no-telnet: "');
    expect(during).not.toBe(before);
    expect(await boltTable(topo.host, true)).toBe(before);
    expect(await snapshot(topo.host)).toEqual(snapBefore);
    expect(await sysctlGet(topo.host, "net.ipv4.ip_default_ttl")).toBe("64");
    // The config still matches the restored kernel; B is still all to do.
    expect((await sb.planExit(a)).code).toBe(0);
    expect((await sb.planExit(b)).code).toBe(2);
    // Without the fault B applies and converges.
    await applyConverged(sb, [b]);
    expect(await boltTable(topo.host)).toContain('log prefix "bolt no-telnet: "');
  });

  it("a failing DOCKER-USER insert right after the table also restores it", async () => {
    // A Docker-style host, so docker_conflict_resolution has DOCKER-USER rules to add.
    const ipt = (...x: string[]) => must(["ip", "netns", "exec", topo.host, "iptables", ...x]);
    await ipt("-N", "DOCKER-USER");
    await ipt("-A", "FORWARD", "-j", "DOCKER-USER");
    const b = sb.write("b.toml", B);
    await applyConverged(sb, [b]);
    const before = (await boltTable(topo.host, true))!;
    const iptBefore = await ipt("-S");
    const c = sb.write("c.toml", B.replace('dest_ports = "23-25"', 'dest_ports = "23-26"') + "\n[firewall]\ndocker_conflict_resolution = true\n");
    const dump = join(sb.dir, "dump-docker");
    const r = await sb.bolt(["apply", "-f", c], { env: failingToolEnv(sb, "iptables", "-I", dump) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("iptables: injected fault");
    expect(readFileSync(dump, "utf8")).toContain("tcp dport 23-26");
    expect(await boltTable(topo.host, true)).toBe(before);
    expect(await ipt("-S")).toBe(iptBefore);
    await applyConverged(sb, [c]);
    expect(await ipt("-S", "DOCKER-USER")).toContain("bolt:bolt-front");
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(await ipt("-S")).toBe(iptBefore);
  });

  it("a failing DOCKER-USER delete puts the chain back exactly: bolt's rules where they were, around another tool's rule", async () => {
    const ipt = (...x: string[]) => must(["ip", "netns", "exec", topo.host, "iptables", ...x]);
    // The Docker-style chain the test above made (made here when this test runs alone).
    const chain = "iptables -N DOCKER-USER 2>/dev/null; iptables -C FORWARD -j DOCKER-USER 2>/dev/null || iptables -A FORWARD -j DOCKER-USER";
    await must(["ip", "netns", "exec", topo.host, "sh", "-c", chain]);
    const c = sb.write("c.toml", `${B}\n[firewall]\ndocker_conflict_resolution = true\n`);
    await applyConverged(sb, [c]);
    // Another tool's rule between bolt's two: an undo by `iptables -I` would put bolt's back above it.
    await ipt("-I", "DOCKER-USER", "2", "-s", "192.0.2.9/32", "-j", "DROP");
    const before = await ipt("-S", "DOCKER-USER");
    expect(before.split("\n").map((l) => (l.includes("bolt:") ? "bolt" : l))).toEqual([
      "-N DOCKER-USER",
      "bolt",
      "-A DOCKER-USER -s 192.0.2.9/32 -j DROP",
      "bolt",
    ]);
    // Without the resolution both rules go: the first -D works, the second (-o) fails.
    const off = sb.write("off.toml", B);
    const r = await sb.bolt(["apply", "-f", off], { env: failingToolEnv(sb, "iptables", "-o", join(sb.dir, "dump-docker-del")) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("rolled back");
    expect(await ipt("-S", "DOCKER-USER")).toBe(before);
    expect((await sb.planExit(c)).code).toBe(0);
    await applyConverged(sb, [off]);
    expect(await ipt("-S", "DOCKER-USER")).toBe("-N DOCKER-USER\n-A DOCKER-USER -s 192.0.2.9/32 -j DROP");
  });
});
