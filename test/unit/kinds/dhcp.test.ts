// The dhcp kind's pure parts: dnsmasq lease times, the VM MAC bolt derives, the files it renders
// and reads back (the plan's fields), and `ss` lines of UDP 67 listeners.
import { describe, expect, it } from "vitest";
import { leaseSeconds } from "../../../reconcilers/dhcp/intent.js";
import type { DhcpIntent } from "../../../reconcilers/dhcp/intent.js";
import { parseListeners } from "../../../reconcilers/dhcp/read.js";
import { dhcpPaths, parseHosts, renderConf, renderHosts, renderOpts, specOf, vmMac } from "../../../reconcilers/dhcp/render.js";

const at = { file: "b.toml", line: 3, col: 8 };
const d: DhcpIntent = {
  network: "lan",
  bridge: "bolt-lan",
  subnet: { network: (10 << 24) + (97 << 16), prefix: 24 },
  gateway: (10 << 24) + (97 << 16) + 1,
  leaseTime: "43200",
  dns: ["1.1.1.1", "9.9.9.9"],
  source: at,
  fieldSources: {},
};

describe("dhcp", () => {
  it("lease times: dnsmasq's units, infinite, and its 2-minute minimum", () => {
    expect(leaseSeconds("12h")).toBe("43200");
    expect(leaseSeconds(3600)).toBe("3600");
    expect(leaseSeconds("2m")).toBe("120");
    expect(leaseSeconds("1w")).toBe("604800");
    expect(leaseSeconds("infinite")).toBe("infinite");
    expect(leaseSeconds("119")).toBe("");
    expect(leaseSeconds("soon")).toBeUndefined();
    expect(leaseSeconds("1.5h")).toBeUndefined();
  });

  it("a VM's MAC is unicast, locally administered and stable per target and endpoint", () => {
    const m = vmMac("bolt-a", "vm1");
    expect(m).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(vmMac("bolt-a", "vm1")).toBe(m);
    expect(vmMac("bolt-b", "vm1")).not.toBe(m);
    expect(vmMac(null, "vm1")).not.toBe(m);
  });

  it("the rendered files read back as the plan's fields; a hosts change leaves the restart fields alone", () => {
    const p = dhcpPaths("bolt-a", "lan");
    const conf = renderConf(d, p);
    expect(conf).toContain("dhcp-range=10.97.0.0,static,255.255.255.0,43200\n");
    expect(conf).toContain(`dhcp-hostsfile=${p.hosts}\n`);
    const hosts = [{ endpoint: "vm1", mac: "02:00:00:00:00:01", ip: "10.97.0.2" }];
    const a = specOf(conf, renderOpts(d), renderHosts(hosts));
    expect(a).toMatchObject({ interface: "bolt-lan", range: "10.97.0.0/24 static", lease_time: "43200", router: "10.97.0.1", dns: "1.1.1.1, 9.9.9.9" });
    const b = specOf(conf, renderOpts(d), renderHosts([...hosts, { endpoint: "vm2", mac: "02:00:00:00:00:02", ip: "10.97.0.3" }]));
    expect(b.hosts).not.toBe(a.hosts);
    expect({ ...b, hosts: a.hosts }).toEqual(a);
    expect(parseHosts(renderHosts(hosts))).toEqual(hosts);
    expect(renderOpts({ ...d, dns: [] })).toBe("option:router,10.97.0.1\noption:dns-server\n");
    expect(specOf(conf, renderOpts({ ...d, dns: [] }), "").dns).toBe("");
  });

  it("ss listeners: the device a socket is bound to, and every process holding it", () => {
    const out = [
      'UNCONN 0      0      0.0.0.0%bolt-lan:67 0.0.0.0:* users:(("dnsmasq",pid=42,fd=4))',
      'UNCONN 0      0      0.0.0.0:67 0.0.0.0:* users:(("dhcpd",pid=7,fd=6),("dhcpd",pid=8,fd=6))',
      'UNCONN 0      0      0.0.0.0:5353 0.0.0.0:* users:(("avahi",pid=9,fd=1))',
    ].join("\n");
    expect(parseListeners(out)).toEqual([
      { address: "0.0.0.0", device: "bolt-lan", procs: [{ name: "dnsmasq", pid: 42 }] },
      {
        address: "0.0.0.0",
        procs: [
          { name: "dhcpd", pid: 7 },
          { name: "dhcpd", pid: 8 },
        ],
      },
    ]);
  });
});
