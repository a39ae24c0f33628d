// Port forwards proven by traffic: a TCP server inside an endpoint answers connections made to
// the host's uplink address — from the outside namespace (DNAT in prerouting, the forward path
// opened for that flow) and from the host namespace itself (DNAT in output: locally generated
// packets never pass prerouting). The outside has no route to the endpoint's subnet, so any
// answer it gets came back through the host's connection tracking.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, ping, requireBuild, sysctlGet } from "./harness.js";
import { Topology, UPLINK, applyConverged, boltTable, destroyClean } from "./nft-topology.js";

const boltfile = (forwards: string) => `
[networks.front]
subnet = "10.71.0.0/24"

[[endpoints]]
name = "web"
network = "front"
ip = "10.71.0.10"
${forwards}`;

const WEB_80 = `
[[port_forwards]]
host_port = 8080
to = "web:80"
`;

describe.skipIf(!!SKIP_REASON)("nft: port forwards", () => {
  const topo = new Topology();
  const sb = topo.sb;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
  });
  afterAll(() => topo.cleanup());

  it("host_port 8080 → web:80 answers from the outside and from the host itself", async () => {
    const file = sb.write("pf.toml", boltfile(WEB_80));
    // Before the forward exists nothing answers on the host's port: the connection fails.
    await applyConverged(sb, [sb.write("nopf.toml", boltfile(""))]);
    await topo.serveTcp(topo.ns("web"), 80, "web-80");
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBeUndefined();

    await applyConverged(sb, [file]);
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBe("web-80");
    expect(await topo.tcp(topo.host, UPLINK.host, 8080)).toBe("web-80");
    // Exactly that port: a neighbouring host port is not forwarded.
    expect(await topo.tcp(topo.outside, UPLINK.host, 8081, 1)).toBeUndefined();
    // The outside still cannot reach the endpoint directly (no route, nothing published).
    expect(await topo.tcp(topo.outside, "10.71.0.10", 80, 1)).toBeUndefined();
  });

  it("removing the forward closes it again", async () => {
    await applyConverged(sb, [sb.write("nopf2.toml", boltfile(""))]);
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBeUndefined();
    expect(await boltTable(topo.host)).not.toContain("dnat");
  });

  it("a forward to ip:port and a udp forward work side by side", async () => {
    await topo.serveTcp(topo.ns("web"), 81, "web-81");
    await topo.serveUdp(topo.ns("web"), 53, "web-udp-53");
    const file = sb.write(
      "pf2.toml",
      boltfile(`${WEB_80}
[[port_forwards]]
host_port = 9090
to = "10.71.0.10:81"

[[port_forwards]]
host_port = 5353
protocol = "udp"
to = "web:53"
`),
    );
    expect(await topo.udp(topo.outside, UPLINK.host, 5353)).toBeUndefined();
    await applyConverged(sb, [file]);
    expect(await topo.tcp(topo.outside, UPLINK.host, 8080)).toBe("web-80");
    expect(await topo.tcp(topo.outside, UPLINK.host, 9090)).toBe("web-81");
    expect(await topo.udp(topo.outside, UPLINK.host, 5353)).toBe("web-udp-53");
    // tcp 5353 is not forwarded: the protocol is part of the forward.
    expect(await topo.tcp(topo.outside, UPLINK.host, 5353, 1)).toBeUndefined();
    await destroyClean(sb);
    expect(await topo.tcp(topo.outside, UPLINK.host, 9090, 1)).toBeUndefined();
  });

  it("volantd.yaml networking.port_forwards: the seed's manual DNAT recipe, declared", async () => {
    // volantd.yaml brings the bridge (network "volant"); the VM stand-in is a bolt endpoint on it.
    const yaml = sb.write(
      "volantd.yaml",
      `networking:
  mode: bridge
  bridge:
    name: volant0
    subnet: 192.168.127.0/24
  port_forwards:
    - { host_port: 8443, to: "192.168.127.100:443", protocol: tcp }
`,
    );
    const vm = sb.write(
      "vm.toml",
      `
[[endpoints]]
name = "vm1"
network = "volant"
ip = "192.168.127.100"
`,
    );
    await applyConverged(sb, [yaml, vm]);
    await topo.serveTcp(topo.ns("vm1"), 443, "vm1-443");
    expect(await topo.tcp(topo.outside, UPLINK.host, 8443)).toBe("vm1-443");
    expect(await topo.tcp(topo.host, UPLINK.host, 8443)).toBe("vm1-443");
    // Bridge mode's other half: the VM reaches the outside through masquerade, with ip_forward on.
    expect(await sysctlGet(topo.host, "net.ipv4.ip_forward")).toBe("1");
    expect(await ping(topo.ns("vm1"), UPLINK.outside)).toBe(true);
    await destroyClean(sb);
    expect(await sysctlGet(topo.host, "net.ipv4.ip_forward")).toBe("0");
  });
});
