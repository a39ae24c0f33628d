// Volant's network-policies.yaml, proven by traffic from the outside: before it, every VM port
// answers; with it, web-* take only tcp 80 and every other VM takes nothing (what no rule allows
// is dropped); replies to what the VMs open themselves still come back. Given alone, the file
// plans no default bridge. A second plan is empty after every apply; destroy leaves nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, must, plannedOf, requireBuild } from "./harness.js";
import { Topology, UPLINK, applyConverged, destroyClean } from "./nft-topology.js";

const BOLTFILE = `
[networks.vms]
subnet = "10.83.0.0/24"

[[endpoints]]
name = "web-1"
network = "vms"
ip = "10.83.0.11"

[[endpoints]]
name = "db-1"
network = "vms"
ip = "10.83.0.12"
`;

const POLICIES = `# /etc/volant/network-policies.yaml (the Volant guide's example)
policies:
  - name: allow-http
    vms: ["web-*"]
    rules:
      - protocol: tcp
        port: 80
        action: allow

  - name: deny-all
    vms: ["*"]
    rules:
      - action: deny
`;

describe.skipIf(!!SKIP_REASON)("Volant network policies (segments of bolt's table)", () => {
  const topo = new Topology();
  const sb = topo.sb;
  const reach = async () => ({
    web80: await topo.tcp(topo.outside, "10.83.0.11", 80),
    web22: await topo.tcp(topo.outside, "10.83.0.11", 22, 1),
    db80: await topo.tcp(topo.outside, "10.83.0.12", 80, 1),
  });

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    // The outside routes the VM subnet to the host (an upstream router would).
    await must(["ip", "-n", topo.outside, "route", "add", "10.83.0.0/24", "via", UPLINK.host]);
  });
  afterAll(() => topo.cleanup());

  it("given alone, the policies file plans no default bridge", async () => {
    const f = sb.write("network-policies.yaml", POLICIES);
    const r = await sb.bolt(["plan", "--json", "-f", f]);
    expect(r.code, r.stderr).toBe(0);
    expect(plannedOf(r.stdout).filter((l) => l.includes("network:"))).toEqual([]);
    const text = await sb.bolt(["plan", "-f", f]);
    expect(text.stderr).toMatch(/volant policy "allow-http": vms "web-\*" matches no VM/);
  });

  it("without the policies every port answers; with them web-* take tcp 80 only and the rest nothing", async () => {
    const bolt = sb.write("bolt-network.toml", BOLTFILE);
    await applyConverged(sb, [bolt]);
    await topo.serveTcp(topo.ns("web-1"), 80, "web80");
    await topo.serveTcp(topo.ns("web-1"), 22, "web22");
    await topo.serveTcp(topo.ns("db-1"), 80, "db80");
    expect(await reach()).toEqual({ web80: "web80", web22: "web22", db80: "db80" });
    await applyConverged(sb, [bolt, sb.write("network-policies.yaml", POLICIES)]);
    expect(await reach()).toEqual({ web80: "web80", web22: undefined, db80: undefined });
    // What a VM opens itself is established traffic: its replies come back.
    await topo.serveTcp(topo.outside, 8080, "outside");
    expect(await topo.tcp(topo.ns("db-1"), UPLINK.outside, 8080)).toBe("outside");
  }, 60_000);

  it("a port without tcp or udp is an error at its line; destroy leaves nothing", async () => {
    const bad = sb.write(
      "bad-policies.yaml",
      "policies:\n  - name: p\n    vms: ['*']\n    rules:\n      - protocol: icmp\n        port: 80\n        action: allow\n",
    );
    const r = await sb.bolt(["plan", "-f", bad]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${bad}:6:15: error: volant policy "p": a port needs protocol tcp or udp`);
    await destroyClean(sb);
  }, 30_000);
});
