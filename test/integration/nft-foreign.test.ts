// Other tools' firewalls: a native nft table and iptables(-nft) rules that exist before bolt
// are byte-identical after apply and after destroy (bolt only ever writes `table inet bolt`).
// A Docker-style host (iptables FORWARD policy DROP with a DOCKER-USER chain) really drops
// bolt's forwarded traffic — in netfilter every base chain on a hook votes, so no accept in
// bolt's own table can help — `bolt firewall analyze` says so, and with
// docker_conflict_resolution = true bolt's own marked DOCKER-USER accepts (the escape Docker
// documents) let the traffic pass; destroy removes exactly those rules.
import { execaSync } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, must, ping, requireBuild } from "./harness.js";
import { Topology, UPLINK, applyConverged, boltTable, destroyClean, iptablesSave } from "./nft-topology.js";

const config = (extra = "") => `
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
${extra}`;

const OTHER_TABLE = `table inet other {
	set trusted {
		type ipv4_addr
		elements = { 192.0.2.7 }
	}

	chain input {
		type filter hook input priority 10; policy accept;
		tcp dport 9999 ip saddr != @trusted counter drop comment "another tool's rule"
	}

	chain forward {
		type filter hook forward priority 5; policy accept;
		iifname "nothing0" drop
	}
}
`;

describe.skipIf(!!SKIP_REASON)("nft: foreign nft tables and iptables rules are never touched", () => {
  const topo = new Topology();
  const sb = topo.sb;
  const ipt = (...a: string[]) => must(["ip", "netns", "exec", topo.host, "iptables", ...a]);
  const other = () => must(["ip", "netns", "exec", topo.host, "nft", "list", "table", "inet", "other"]);
  let otherBefore: string;
  let iptBefore: string;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    await must(["ip", "netns", "exec", topo.host, "nft", "-f", "-"], OTHER_TABLE);
    await ipt("-A", "INPUT", "-p", "tcp", "--dport", "2222", "-m", "comment", "--comment", "admin ssh", "-j", "ACCEPT");
    await ipt("-A", "FORWARD", "-s", "192.168.99.0/24", "-j", "ACCEPT");
    await ipt("-t", "nat", "-A", "POSTROUTING", "-s", "192.168.99.0/24", "-j", "MASQUERADE");
    await ipt("-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "7070", "-j", "DNAT", "--to-destination", "192.168.99.2:70");
    otherBefore = await other();
    iptBefore = await iptablesSave(topo.host);
    // The fixture is what it claims to be: both rulesets are really there.
    expect(otherBefore).toContain("another tool's rule");
    expect(iptBefore).toContain("-A PREROUTING -p tcp -m tcp --dport 7070 -j DNAT --to-destination 192.168.99.2:70");
    expect(iptBefore).toContain('--comment "admin ssh"');
  });
  afterAll(() => topo.cleanup());

  it("apply leaves them byte-identical, and bolt's traffic works alongside", async () => {
    await applyConverged(sb, [sb.write("a.toml", config())]);
    expect(await other()).toBe(otherBefore);
    expect(await iptablesSave(topo.host)).toBe(iptBefore);
    expect(await boltTable(topo.host)).toContain("bolt:rule:no-telnet");
    expect(await ping(topo.ns("web"), UPLINK.outside)).toBe(true);
    await topo.serveTcp(topo.ns("web"), 80, "web-80");
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBe("web-80");
  });

  it("an update (bolt's table replaced in one transaction) leaves them byte-identical", async () => {
    await applyConverged(sb, [sb.write("b.toml", config("logging = true\n"))]);
    expect(await boltTable(topo.host)).toContain('log prefix "bolt no-telnet: "');
    expect(await other()).toBe(otherBefore);
    expect(await iptablesSave(topo.host)).toBe(iptBefore);
  });

  it("destroy leaves them byte-identical", async () => {
    await destroyClean(sb);
    expect(await other()).toBe(otherBefore);
    expect(await iptablesSave(topo.host)).toBe(iptBefore);
  });

  it("firewall analyze reports the foreign DNAT on a port bolt would forward, read-only", async () => {
    const file = sb.write("clash.toml", config().replace("host_port = 8080", "host_port = 7070"));
    const r = await sb.bolt(["firewall", "analyze", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/CONFLICT port-clash: .*tcp port 7070 is already DNATed/);
    expect(await other()).toBe(otherBefore);
    expect(await iptablesSave(topo.host)).toBe(iptBefore);
  });

  it("another nft table's forward policy drop is reported, and does drop bolt's traffic", async () => {
    const file = sb.write("a.toml", config());
    await applyConverged(sb, [file]);
    await must(
      ["ip", "netns", "exec", topo.host, "nft", "-f", "-"],
      "table ip strict {\n\tchain gate {\n\t\ttype filter hook forward priority 0; policy drop;\n\t}\n}\n",
    );
    try {
      const r = await sb.bolt(["firewall", "analyze", "-f", file]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/CONFLICT foreign-forward-drop: table ip strict: base chain "gate" on the forward hook has policy drop/);
      // bolt's own accept for its bridge is in the table, and still: every base chain votes.
      expect(await topo.noReply(topo.ns("web"), UPLINK.outside)).toBe(true);
    } finally {
      await must(["ip", "netns", "exec", topo.host, "nft", "delete", "table", "ip", "strict"]);
    }
    expect(await ping(topo.ns("web"), UPLINK.outside)).toBe(true);
    await destroyClean(sb);
    expect(await other()).toBe(otherBefore);
  });
});

describe.skipIf(!!SKIP_REASON)("nft: a Docker-style FORWARD DROP", () => {
  const topo = new Topology();
  const sb = topo.sb;
  const ipt = (...a: string[]) => must(["ip", "netns", "exec", topo.host, "iptables", ...a]);
  let dockerUserBefore: string;
  let iptBefore: string;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    // What dockerd sets up (iptables-nft backend), minus its own bridge.
    await ipt("-N", "DOCKER-USER");
    await ipt("-A", "DOCKER-USER", "-j", "RETURN");
    await ipt("-A", "FORWARD", "-j", "DOCKER-USER");
    await ipt("-P", "FORWARD", "DROP");
    dockerUserBefore = await ipt("-S", "DOCKER-USER");
    iptBefore = await iptablesSave(topo.host);
    expect(iptBefore).toContain(":FORWARD DROP");
  });
  afterAll(() => topo.cleanup());

  it("firewall analyze reports the FORWARD policy DROP (exit 0)", async () => {
    const r = await sb.bolt(["firewall", "analyze", "-f", sb.write("plain.toml", config())]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/CONFLICT iptables-forward-drop: .*FORWARD.*DROP/);
    expect(r.stdout).toContain("DOCKER-USER");
    const j = await sb.bolt(["firewall", "analyze", "--json", "-f", sb.write("plain.toml", config())]);
    expect(JSON.parse(j.stdout).findings.map((f: { code: string }) => f.code)).toContain("iptables-forward-drop");
  });

  it("it really drops bolt's forwarded traffic; plan warns when asked to analyse", async () => {
    await applyConverged(sb, [sb.write("plain.toml", config())]);
    expect(await topo.noReply(topo.ns("web"), UPLINK.outside)).toBe(true);
    await topo.serveTcp(topo.ns("web"), 80, "web-80");
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080, 1)).toBeUndefined();
    const p = await sb.bolt(["plan", "-f", sb.write("intelligent.toml", config('\n[firewall]\nmode = "intelligent"\n'))]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stderr).toMatch(/firewall analysis: .*FORWARD.*DROP/);
  });

  it("docker_conflict_resolution = true: bolt's DOCKER-USER accepts let its traffic pass", async () => {
    const file = sb.write("resolve.toml", config("\n[firewall]\ndocker_conflict_resolution = true\n"));
    await applyConverged(sb, [file]);
    expect(await ping(topo.ns("web"), UPLINK.outside)).toBe(true);
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBe("web-80");
    const rules = await ipt("-S", "DOCKER-USER");
    expect(rules).toContain('-A DOCKER-USER -i bolt-front -m comment --comment "bolt:bolt-front" -j ACCEPT');
    expect(rules).toContain('-A DOCKER-USER -o bolt-front -m comment --comment "bolt:bolt-front" -j ACCEPT');
    // Docker's own RETURN is still there, after bolt's inserts.
    expect(rules.trim().split("\n").at(-1)).toBe("-A DOCKER-USER -j RETURN");
    // The policy DROP is still Docker's: bolt never changes it.
    expect(await ipt("-S", "FORWARD")).toContain("-P FORWARD DROP");
    const a = await sb.bolt(["firewall", "analyze", "-f", file]);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/INFO iptables-forward-drop-resolved/);
    expect(a.stdout).not.toMatch(/CONFLICT/);
  });

  it("turning resolution off removes bolt's DOCKER-USER rules only", async () => {
    await applyConverged(sb, [sb.write("plain2.toml", config())]);
    expect(await ipt("-S", "DOCKER-USER")).toBe(dockerUserBefore);
    expect(await topo.noReply(topo.ns("web"), UPLINK.outside)).toBe(true);
  });

  it("destroy removes only bolt's rules", async () => {
    await applyConverged(sb, [sb.write("resolve.toml", config("\n[firewall]\ndocker_conflict_resolution = true\n"))]);
    expect(await ipt("-S", "DOCKER-USER")).not.toBe(dockerUserBefore);
    await destroyClean(sb);
    expect(await ipt("-S", "DOCKER-USER")).toBe(dockerUserBefore);
    expect(await iptablesSave(topo.host)).toBe(iptBefore);
  });
});

const HAS_LEGACY = (() => {
  try {
    return execaSync("iptables-legacy", ["--version"], { reject: false }).exitCode === 0;
  } catch {
    return false;
  }
})();

// Docker on the iptables-legacy backend: bolt writes DOCKER-USER through `iptables` (nf_tables
// here), so it cannot resolve this one — and the analysis must not claim it did.
describe.skipIf(!!SKIP_REASON || !HAS_LEGACY)("nft: a Docker-style FORWARD DROP on iptables-legacy", () => {
  const topo = new Topology();
  const sb = topo.sb;
  const legacy = (...a: string[]) => must(["ip", "netns", "exec", topo.host, "iptables-legacy", ...a]);

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    await legacy("-N", "DOCKER-USER");
    await legacy("-A", "DOCKER-USER", "-j", "RETURN");
    await legacy("-A", "FORWARD", "-j", "DOCKER-USER");
    await legacy("-P", "FORWARD", "DROP");
  });
  afterAll(() => topo.cleanup());

  it("is reported as a conflict (with a legacy fix), not as resolved, and really drops", async () => {
    const file = sb.write("resolve.toml", config("\n[firewall]\ndocker_conflict_resolution = true\n"));
    await applyConverged(sb, [file]);
    expect(await topo.noReply(topo.ns("web"), UPLINK.outside)).toBe(true);
    const a = await sb.bolt(["firewall", "analyze", "-f", file]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/CONFLICT iptables-forward-drop: iptables-legacy: .*FORWARD.*DROP/);
    expect(a.stdout).toContain("iptables-legacy -I DOCKER-USER -i bolt-front -j ACCEPT");
    expect(a.stdout).not.toContain("resolved");
    // plan warns (resolution on analyses foreign rulesets in plan).
    const p = await sb.bolt(["plan", "-f", file]);
    expect(p.stderr).toMatch(/firewall analysis: iptables-legacy: .*DROP/);
    // The admin's fix from the hint works.
    await legacy("-I", "DOCKER-USER", "-i", "bolt-front", "-j", "ACCEPT");
    await legacy("-I", "DOCKER-USER", "-o", "bolt-front", "-j", "ACCEPT");
    expect(await ping(topo.ns("web"), UPLINK.outside)).toBe(true);
    await destroyClean(sb);
  });
});
