// The IPv4 core's bad-input classes for IPv6 (syntax, special ranges, overlap, gateway outside,
// host bits, reversed or outside pool, duplicates, references), each refused with the
// file:line:col of the offending value and nothing planned; plus what a good dual-stack
// config compiles to.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { formatIp6 } from "../../src/core/ipv6.js";
import { assignAddresses } from "../../reconcilers/endpoint/ipam.js";
import { compileTable } from "../../reconcilers/nft/compile.js";
import { kinds } from "./helpers/builders.js";

const dir = mkdtempSync(join(tmpdir(), "bolt-v6-errors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function errorsOf(text: string, name = "bolt-network.toml"): { file: string; errors: Diagnostic[] } {
  const file = write(name, text);
  let err: unknown;
  try {
    loadIntent([file], "");
  } catch (e) {
    err = e;
  }
  expect(err, "the config must be refused").toBeInstanceOf(ConfigError);
  return { file, errors: (err as ConfigError).diagnostics.filter((d) => d.severity === "error") };
}

/** The error matching `message` is at the position where `needle` starts. */
function expectAt(text: string, needle: string, message: RegExp, name?: string) {
  const { errors } = errorsOf(text, name);
  const hit = errors.find((e) => message.test(e.message));
  expect(hit, `no error matching ${message} among:\n${errors.map((e) => e.message).join("\n")}`).toBeDefined();
  const i = text.indexOf(needle);
  expect(i, `needle ${needle}`).toBeGreaterThanOrEqual(0);
  const before = text.slice(0, i).split("\n");
  expect({ line: hit!.source?.line, col: hit!.source?.col }).toEqual({ line: before.length, col: before[before.length - 1]!.length + 1 });
}

const net = (ipv6: string, name = "web", subnet = "10.80.0.0/24") => `[networks.${name}]\nsubnet = "${subnet}"\nipv6 = ${ipv6}\n`;

describe("IPv6 config errors, each at its file:line:col", () => {
  it("an unparseable prefix", () => {
    const t = net('{ subnet = "fd20:::/64" }');
    expectAt(t, '"fd20:::/64"', /ipv6 subnet "fd20:::\/64" is not an IPv6 CIDR/);
  });

  it("host bits set, with the prefix it probably meant", () => {
    const t = net('{ subnet = "fd20::5/64" }');
    const { errors } = errorsOf(t);
    expect(errors[0]!.message).toMatch(/has host bits set/);
    expect(errors[0]!.hint).toBe('did you mean "fd20::/64"?');
    expectAt(t, '"fd20::5/64"', /host bits/);
  });

  it("special ranges: link-local, multicast, IPv4-mapped", () => {
    expectAt(net('{ subnet = "fe80::/64" }'), '"fe80::/64"', /is link-local/);
    expectAt(net('{ subnet = "ff05::/64" }'), '"ff05::/64"', /is multicast/);
    expectAt(net('{ subnet = "::ffff:0:0/96" }'), '"::ffff:0:0/96"', /IPv4-mapped/);
  });

  it("too small for a gateway and an endpoint", () => {
    expectAt(net('{ subnet = "fd20::/127" }'), '"fd20::/127"', /too small/);
  });

  it("a gateway outside the subnet, and one that is the subnet-router anycast address", () => {
    expectAt(net('{ subnet = "fd20::/64", gateway = "fd21::1" }'), '"fd21::1"', /ipv6 gateway fd21::1 is outside subnet fd20::\/64/);
    expectAt(net('{ subnet = "fd20::/64", gateway = "fd20::" }'), '"fd20::"', /subnet-router anycast/);
  });

  it("a reversed pool, and one outside the subnet", () => {
    const rev = net('{ subnet = "fd20::/64", ip_range = { start = "fd20::ff", end = "fd20::10" } }');
    expectAt(rev, "{ start", /ipv6 ip_range is reversed \(fd20::ff > fd20::10\)/);
    const out = net('{ subnet = "fd20::/64", ip_range = { start = "fd20::10", end = "fd21::10" } }');
    expectAt(out, "{ start", /ipv6 ip_range fd20::10–fd21::10 is not inside subnet fd20::\/64/);
  });

  it("overlapping IPv6 subnets between networks: the later one is named, with the other's location", () => {
    const t = `${net('{ subnet = "fd20::/64" }')}\n${net('{ subnet = "fd20::/48" }', "db", "10.81.0.0/24")}`;
    const { errors } = errorsOf(t);
    expect(errors[0]!.message).toMatch(/network "db": ipv6 subnet fd20::\/48 overlaps network "web" \(fd20::\/64, .*bolt-network\.toml:1\)/);
    expect(errors[0]!.source?.line).toBe(7);
  });

  it("an MTU below IPv6's 1280 on a dual-stack network", () => {
    const t = `[networks.web]\nsubnet = "10.80.0.0/24"\nmtu = 1200\nipv6 = { subnet = "fd20::/64" }\n`;
    expectAt(t, "1200", /mtu 1200 is below 1280/);
  });

  it("endpoints: ip6 malformed, outside, the gateway, duplicated, or on a network without IPv6", () => {
    const base = net('{ subnet = "fd20::/64" }');
    expectAt(`${base}[[endpoints]]\nname = "a"\nnetwork = "web"\nip6 = "fd20::1::2"\n`, '"fd20::1::2"', /ip6 "fd20::1::2" is not an IPv6 address/);
    expectAt(`${base}[[endpoints]]\nname = "a"\nnetwork = "web"\nip6 = "fd21::2"\n`, '"fd21::2"', /ip6 fd21::2 is outside subnet fd20::\/64/);
    expectAt(`${base}[[endpoints]]\nname = "a"\nnetwork = "web"\nip6 = "fd20::1"\n`, '"fd20::1"', /is the ipv6 gateway of network "web"/);
    const dup = `${base}[[endpoints]]\nname = "a"\nnetwork = "web"\nip6 = "fd20::9"\n\n[[endpoints]]\nname = "b"\nnetwork = "web"\nip6 = "fd20:0::9"\n`;
    expectAt(dup, '"fd20:0::9"', /ip6 fd20::9 is already used by endpoint "a"/);
    const v4only = `[networks.web]\nsubnet = "10.80.0.0/24"\n\n[[endpoints]]\nname = "a"\nnetwork = "web"\nip6 = "fd20::9"\n`;
    expectAt(v4only, '"fd20::9"', /network "web" has no ipv6 subnet/);
  });

  it("port forwards: an IPv6 host address to an endpoint without IPv6, an unbracketed IPv6 target", () => {
    const v4only = `[networks.web]\nsubnet = "10.80.0.0/24"\n\n[[endpoints]]\nname = "a"\nnetwork = "web"\n\n[[port_forwards]]\nhost_port = 80\nhost_ip = "fd00::1"\nto = "a:80"\n`;
    expectAt(v4only, '"fd00::1"', /host_ip fd00::1 is IPv6 but "a" has no IPv6 address/);
    const mixed = `${net('{ subnet = "fd20::/64" }')}\n[[port_forwards]]\nhost_port = 80\nhost_ip = "192.0.2.1"\nto = "[fd20::5]:80"\n`;
    expectAt(mixed, '"192.0.2.1"', /is IPv4 but "\[fd20::5\]:80" is IPv6/);
  });

  it("firewall rules: an IPv6 source with host bits", () => {
    const t = `${net('{ subnet = "fd20::/64" }')}\n[[firewall.rules]]\nname = "r"\naction = "deny"\nsource = "fd20::1/64"\n`;
    expectAt(t, '"fd20::1/64"', /source "fd20::1\/64" has host bits set/);
  });

  it("a blocklist line that is not an IPv6 address is reported at the list's own line and column", () => {
    write("bl6.txt", "# v6\n2001:db8::/32\n  2001:db8::zz\n");
    const t = `${net('{ subnet = "fd20::/64" }')}\n[firewall.ddos]\nblocklists = ["bl6.txt"]\n`;
    const { errors } = errorsOf(t);
    expect(errors[0]!.message).toBe('"2001:db8::zz" is not an IPv6 address or CIDR');
    expect(errors[0]!.source).toMatchObject({ file: "bl6.txt", line: 3, col: 3 });
  });

  it("net.ipv6.conf.all.forwarding = 0 while a network's IPv6 reaches out", () => {
    const t = `${net('{ subnet = "fd20::/64" }')}\n[sysctl]\n"net.ipv6.conf.all.forwarding" = 0\n`;
    expectAt(t, '"net.ipv6.conf.all.forwarding"', /has ipv6 internet = "masquerade": both need IPv6 forwarding/);
  });
});

describe("IPv6 IPAM and compile", () => {
  const text = `${net('{ subnet = "fd20::/64", ip_range = { start = "fd20::100", end = "fd20::102" } }')}
[[endpoints]]
name = "a"
network = "web"

[[endpoints]]
name = "b"
network = "web"
ip6 = "fd20::101"

[[endpoints]]
name = "c"
network = "web"
`;
  const intent = loadIntent([write("ipam.toml", text)], "").intent;
  const { networks, endpoints, nft } = kinds(intent);

  it("leases are sequential from the pool, skip static addresses, and keep a lease already held", () => {
    const fresh = assignAddresses(networks, endpoints, new Map(), new Map());
    expect([...fresh.ips6].map(([n, ip]) => `${n}=${formatIp6(ip)}`).sort()).toEqual(["a=fd20::100", "b=fd20::101", "c=fd20::102"]);
    // c held fd20::100 before: a new a does not steal it.
    const kept = assignAddresses(networks, endpoints, new Map([["c/6", "fd20::100"]]), new Map());
    expect(formatIp6(kept.ips6.get("c")!)).toBe("fd20::100");
    expect(formatIp6(kept.ips6.get("a")!)).toBe("fd20::102");
    // The kernel's record (the alias) recovers a lease when the store is gone.
    const recovered = assignAddresses(networks, endpoints, new Map(), new Map([["a/6", "fd20::102"]]));
    expect(formatIp6(recovered.ips6.get("a")!)).toBe("fd20::102");
  });

  it("a full pool is an error naming the pool", () => {
    const more = [...endpoints, { ...endpoints[0]!, name: "d" }];
    const r = assignAddresses(networks, more, new Map(), new Map());
    expect(r.diagnostics.map((d) => d.message)).toEqual(['endpoint "d": no free ipv6 address left in network "web" (pool fd20::100–fd20::102)']);
  });

  it("compiles both families into the one inet table, family-agnostic where nft matches interfaces", () => {
    const t = compileTable({ nft: nft!, networks, endpointIps: new Map([["a", 1]]), endpointIps6: new Map([["a", 0xfd20n << 112n]]) })!;
    const sets = Object.fromEntries(t.sets.map((s) => [s.name, s.elements]));
    expect(sets.bolt_nets6).toEqual(["fd20::/64"]);
    expect(sets.internet_nets6).toEqual(["fd20::/64"]);
    const rules = t.chains.flatMap((c) => c.rules.map((r) => `${c.name} ${r.key}: ${r.text}`));
    expect(rules).toContain("input ndp: icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept");
    expect(rules).toContain("nat_post masquerade6: ip6 saddr @internet_nets6 oifname != @bridges masquerade");
    // Isolation matches interfaces: one rule for both families.
    expect(rules.filter((r) => r.startsWith("forward isolation-out"))).toHaveLength(1);
  });

  it("segments and rules naming a dual-stack network get one rule per family; an IPv6 CIDR only the IPv6 one", () => {
    const seg = `${text}
[[segments]]
name = "front"
members = ["web"]
network_policies = ["deny icmp from external", "allow tcp:22 from fd99::/64"]

[[firewall.rules]]
name = "web-dns"
action = "allow"
protocol = "udp"
dest_ports = "53"
destination = "web"
`;
    const k = kinds(loadIntent([write("seg.toml", seg)], "").intent);
    const t = compileTable({ nft: k.nft!, networks: k.networks, endpointIps: new Map() })!;
    const rules = t.chains.flatMap((c) => c.rules.map((r) => `${r.key}: ${r.text}`));
    expect(rules).toContain("segment:front:0: ip saddr != @bolt_nets ip daddr 10.80.0.0/24 meta l4proto icmp counter drop");
    expect(rules).toContain("segment:front:0/6: ip6 saddr != @bolt_nets6 ip6 daddr fd20::/64 meta l4proto ipv6-icmp counter drop");
    expect(rules.filter((r) => r.startsWith("segment:front:1"))).toEqual([
      "segment:front:1/6: ip6 saddr fd99::/64 ip6 daddr fd20::/64 tcp dport 22 counter accept",
    ]);
    expect(rules).toContain("rule:web-dns: udp dport 53 ip daddr 10.80.0.0/24 counter accept");
    expect(rules).toContain("rule:web-dns/6: udp dport 53 ip6 daddr fd20::/64 counter accept");
  });
});
