// GhostWire mesh over IPv6 (issue 11) on the real kernel: the three namespaced hosts of
// mesh-topology.ts, their underlay made dual-stack and every peer's endpoint written
// `[IPv6]:port`. Each node gets its IPv6 mesh address derived from its IPv4 one inside
// fd7a:115c:a1e0::/48 (no address6 in any file): every host pings every other over IPv6 through
// the tunnel (the transfer counters move), an ACL that denies one pair denies it for both
// families (Tailscale: a host name stands for both addresses) while an IPv6 CIDR denies only
// IPv6, and an exit node carries the client's IPv6 default route by policy routing and
// masquerades it to an IPv6 "internet" behind it that has no route back to the mesh. Every
// apply is followed by an empty re-plan.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, ipJson, must, requireBuild, run, sysctlGet } from "./harness.js";
import type { Json } from "./harness.js";
import { HOSTS, MESH6, MESH_IP, MeshLab, UNDERLAY, WG_PORT, pingUntil, routeGet } from "./mesh-topology.js";
import type { HostId, MeshFileOpts } from "./mesh-topology.js";

/** The underlay's IPv6 side (documentation prefix): the hosts reach each other on the bridge directly. */
const UNDERLAY6 = { a: "2001:db8:18::1", b: "2001:db8:18::2", c: "2001:db8:18::3" } as const;
/** An IPv6 LAN behind A (on mesh-topology's lan0 link), advertised by A; no route back to the mesh either. */
const LAN6 = { subnet: "2001:db8:77::/64", gw: "2001:db8:77::1", host: "2001:db8:77::2" } as const;
/** The IPv6 "internet" behind A (on mesh-topology's up0 link): it has no route to the mesh's prefix. */
const INTERNET6 = { gw: "2001:db8:203::1", host: "2001:db8:203::2" } as const;
/** fd7a:115c:a1e0::/48 with the IPv4 mesh address (100.64.7.N = 0x6440_07NN) as the last 32 bits, written out. */
const DERIVED = { a: "fd7a:115c:a1e0::6440:701", b: "fd7a:115c:a1e0::6440:702", c: "fd7a:115c:a1e0::6440:703" } as const;

async function ping6Until(ns: string, ip: string, tries = 5): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    const r = await run(["ip", "netns", "exec", ns, "ping", "-6", "-n", "-c", "1", "-W", "1", ip]);
    if (r.code === 0) return true;
  }
  return false;
}

describe.skipIf(!!SKIP_REASON)("mesh over IPv6: derived v6 addresses, [v6]:port endpoints, dual-family ACLs, v6 exit routing", () => {
  const lab = new MeshLab(HOSTS, true);

  beforeAll(async () => {
    requireBuild();
    await lab.build();
    for (const h of HOSTS) {
      // nodad: the address is usable at once (no duplicate address detection wait).
      await must(["ip", "-n", lab.ns(h), "-6", "address", "add", `${UNDERLAY6[h]}/64`, "dev", "eth0", "nodad"]);
    }
    await must(["ip", "-n", lab.ns("a"), "-6", "address", "add", `${INTERNET6.gw}/64`, "dev", "up0", "nodad"]);
    await must(["ip", "-n", lab.ns("inet"), "-6", "address", "add", `${INTERNET6.host}/64`, "dev", "eth0", "nodad"]);
    await must(["ip", "-n", lab.ns("a"), "-6", "address", "add", `${LAN6.gw}/64`, "dev", "lan0", "nodad"]);
    await must(["ip", "-n", lab.ns("lan"), "-6", "address", "add", `${LAN6.host}/64`, "dev", "eth0", "nodad"]);
  });
  afterAll(() => lab.cleanup());

  /** Host h's file with every peer's endpoint as `[IPv6]:port`. */
  const file = (h: HostId, o: MeshFileOpts = {}) =>
    lab.sb.write(
      o.name ?? `${h}.toml`,
      HOSTS.reduce((t, p) => t.replace(`endpoint = "${UNDERLAY[p]}:${WG_PORT}"`, `endpoint = "[${UNDERLAY6[p]}]:${WG_PORT}"`), lab.meshText(h, o)),
    );
  /** Every host applies its file; each re-plan is empty. A (a subnet router or exit node) gets IPv6 forwarding implied. */
  const applyRouted = async (o: MeshFileOpts) => {
    for (const h of HOSTS) {
      const files = ["-f", file(h, o)];
      const r = await lab.bolt(h, ["apply", ...files, "--allow-destroy"]);
      expect(r.code, `apply ${h}: ${r.stdout}\n${r.stderr}`).toBe(0);
      const p = await lab.bolt(h, ["plan", ...files, "--detailed-exitcode"]);
      expect(p.code, `re-plan of ${h} after apply must be empty:\n${p.stdout}\n${p.stderr}`).toBe(0);
    }
    expect(await sysctlGet(lab.ns("a"), "net.ipv6.conf.all.forwarding")).toBe("1");
  };
  // Dropping a test's ACLs deletes most of bolt's nft objects: past the mass-delete brake, on purpose.
  const applyAll = async (o: MeshFileOpts = {}) => {
    for (const h of HOSTS) await lab.apply(h, file(h, o), ["--allow-destroy"]);
  };

  it("every node has its derived IPv6 mesh address; every host pings every other over IPv6 through the tunnel", async () => {
    expect(MESH6).toEqual(DERIVED);
    await applyAll({ magicDns: false });
    for (const h of HOSTS) {
      const ns = lab.ns(h);
      const addrs = ((await ipJson(ns, ["-6", "addr", "show", "dev", "gw0", "scope", "global"])) as Json[])[0].addr_info
        .filter((a: Json) => a.local)
        .map((a: Json) => `${a.local}/${a.prefixlen}`);
      expect(addrs, JSON.stringify(addrs)).toEqual([`${MESH6[h]}/128`]);
      const routes = ((await ipJson(ns, ["-6", "route", "show", "proto", "176"])) as Json[]).map((r) => `${r.dst} ${r.dev}`).sort();
      expect(routes).toEqual(
        HOSTS.filter((p) => p !== h)
          .map((p) => `${MESH6[p]} gw0`)
          .sort(),
      );
      // Both families in each peer's allowed IPs, as wg shows them.
      for (const p of HOSTS.filter((x) => x !== h)) {
        const line = (await lab.peers(h)).find((l) => l.startsWith(lab.pub[p]));
        expect(line?.split(" ")[3]?.split(",").sort()).toEqual([`${MESH_IP[p]}/32`, `${MESH6[p]}/128`].sort());
      }
    }
    for (const from of HOSTS) {
      for (const to of HOSTS.filter((x) => x !== from)) {
        const sent = await lab.peerStatus(from, to);
        expect(await ping6Until(lab.ns(from), MESH6[to]), `${from} → ${to} over IPv6`).toBe(true);
        const after = await lab.peerStatus(from, to);
        // An ICMPv6 echo inside WireGuard: at least 104 + 32 bytes of transport data.
        expect(after.tx_bytes - sent.tx_bytes, `${from} sent to ${to} through the tunnel`).toBeGreaterThanOrEqual(136);
        // The endpoint is the peer's IPv6 underlay address, in brackets, as written.
        expect(after.endpoint).toBe(`[${UNDERLAY6[to]}]:${WG_PORT}`);
        expect(await pingUntil(lab.ns(from), MESH_IP[to]), `${from} → ${to} over IPv4`).toBe(true);
      }
    }
  });

  it("an ACL denying a → c denies both families (a name is both addresses); every other pair still works", async () => {
    const extra = `
[[acls]]
action = "drop"
src = ["host-a"]
dst = ["host-c:*"]

[[acls]]
action = "accept"
src = ["*"]
dst = ["*:*"]

[[acl_tests]]
src = "host-a"
proto = "icmp"
deny = ["host-c:0"]
accept = ["host-b:0"]
`;
    await applyAll({ magicDns: false, extra });
    const rules = await run(["ip", "netns", "exec", lab.ns("c"), "nft", "list", "chain", "inet", "bolt", "mesh_acl"]);
    expect(rules.stdout).toContain(`ip6 saddr ${MESH6.a} ip6 daddr ${MESH6.c}`);
    expect(await ping6Until(lab.ns("a"), MESH6.c, 2), "a → c over IPv6 is denied").toBe(false);
    expect(await pingUntil(lab.ns("a"), MESH_IP.c, 2), "a → c over IPv4 is denied").toBe(false);
    for (const [from, to] of [
      ["a", "b"],
      ["b", "a"],
      ["b", "c"],
      ["c", "b"],
      ["c", "a"],
    ] as [HostId, HostId][]) {
      expect(await ping6Until(lab.ns(from), MESH6[to]), `${from} → ${to} over IPv6`).toBe(true);
      expect(await pingUntil(lab.ns(from), MESH_IP[to]), `${from} → ${to} over IPv4`).toBe(true);
    }
  });

  it("an IPv6 CIDR in an ACL matches IPv6 only: b → c is denied over IPv6, allowed over IPv4", async () => {
    const extra = `
[[acls]]
action = "drop"
src = ["${MESH6.b}/128"]
dst = ["host-c:*"]

[[acls]]
action = "accept"
src = ["*"]
dst = ["*:*"]
`;
    await applyAll({ magicDns: false, extra });
    expect(await ping6Until(lab.ns("b"), MESH6.c, 2), "b → c over IPv6 is denied").toBe(false);
    expect(await pingUntil(lab.ns("b"), MESH_IP.c), "b → c over IPv4 is allowed").toBe(true);
    expect(await ping6Until(lab.ns("a"), MESH6.c), "a → c over IPv6 is allowed").toBe(true);
  });

  it("an IPv6 subnet route: A advertises its IPv6 LAN; B (accept_routes) reaches it through A, C (not accepting) does not", async () => {
    await applyRouted({ magicDns: false, world: { a: { advertise: [LAN6.subnet] }, b: { acceptRoutes: true } } });
    const b = lab.ns("b");
    expect((await routeGet(b, LAN6.host)).dev).toBe("gw0");
    const toA = (await lab.peers("b")).find((l) => l.startsWith(lab.pub.a));
    expect(toA?.split(" ")[3]?.split(",")).toContain(LAN6.subnet);
    expect(await ping6Until(b, LAN6.host), "b → A's IPv6 LAN").toBe(true);
    expect(await ping6Until(lab.ns("c"), LAN6.host, 2), "c does not accept routes").toBe(false);
    const fwd = await run(["ip", "netns", "exec", lab.ns("a"), "nft", "list", "chain", "inet", "bolt", "forward"]);
    expect(fwd.stdout).toContain(`iifname "gw0" ip6 daddr ${LAN6.subnet} accept`);
  });

  it("a node using an exit node sends its IPv6 default route into the tunnel by policy routing; the exit node masquerades it", async () => {
    const world: MeshFileOpts["world"] = { a: { exitNode: true }, b: { useExitNode: "a" } };
    await applyRouted({ magicDns: false, world });
    const b = lab.ns("b");
    const rules = ((await ipJson(b, ["-6", "rule", "show"])) as Json[]).filter((r) => r.protocol === "176");
    expect(rules.map((r) => `${r.priority} ${r.table}`)).toEqual(["20000 main", "20001 20100"]);
    const defaults = ((await ipJson(b, ["-6", "route", "show", "table", "20100"])) as Json[]).map((r) => `${r.dst} ${r.dev}`);
    expect(defaults).toEqual(["default gw0"]);
    // Anything off the mesh and off the underlay: into the tunnel (table 20100)…
    expect((await routeGet(b, "2001:db8:ffff::1")).dev).toBe("gw0");
    // …but WireGuard's own (marked) packets and the underlay stay on main.
    // (marked: main, where this underlay has no IPv6 default route, so only the underlay itself is reachable)
    expect((await routeGet(b, UNDERLAY6.a, 0x0b000000)).dev).toBe("eth0");
    expect((await run(["ip", "-n", b, "route", "get", "2001:db8:ffff::1", "mark", "0xb000000"])).code).not.toBe(0);
    expect((await routeGet(b, UNDERLAY6.a)).dev).toBe("eth0");
    // Still a working mesh over IPv6 (the endpoints are on the underlay, kept off the tunnel).
    expect(await ping6Until(b, MESH6.c), "b → c over IPv6 with an exit node").toBe(true);
    // The IPv6 internet behind A answers B: through the tunnel, masqueraded to A's up0 address
    // (the far side has no route back to fd7a:115c:a1e0::/48).
    const before = await lab.peerStatus("b", "a");
    expect(await ping6Until(b, INTERNET6.host), "b → the IPv6 internet behind a").toBe(true);
    expect((await lab.peerStatus("b", "a")).tx_bytes - before.tx_bytes, "through the tunnel to a").toBeGreaterThanOrEqual(136);
    expect(((await ipJson(lab.ns("inet"), ["-6", "route", "show"])) as Json[]).some((r) => String(r.dst).startsWith("fd7a"))).toBe(false);
    // A's exit offer is dual-family: its forward accept and masquerade are not `ip`-only.
    const nat = await run(["ip", "netns", "exec", lab.ns("a"), "nft", "list", "chain", "inet", "bolt", "nat_post"]);
    expect(nat.stdout).toMatch(/iifname "gw0" oifname != "gw0" masquerade/);
    const toA = (await lab.peers("b")).find((l) => l.startsWith(lab.pub.a));
    expect(toA?.split(" ")[3]?.split(",")).toEqual(expect.arrayContaining(["0.0.0.0/0", "::/0", `${MESH6.a}/128`]));
    // Back to no exit node: the IPv6 rules and default route go again.
    await applyAll({ magicDns: false });
    expect(((await ipJson(b, ["-6", "rule", "show"])) as Json[]).filter((r) => r.protocol === "176")).toEqual([]);
    expect(((await ipJson(b, ["-6", "route", "show", "table", "all", "proto", "176"])) as Json[]).map((r) => r.dst).sort()).toEqual([MESH6.a, MESH6.c].sort());
  });

  it("[features] ipv6 = false: an IPv4-only mesh again (the v6 addresses, routes and allowed IPs go)", async () => {
    for (const h of HOSTS) {
      const text = lab.meshText(h, { magicDns: false }).replace("[features]\n", "[features]\nipv6 = false\n");
      await lab.apply(h, lab.sb.write(`${h}-v4.toml`, text), ["--allow-destroy"]);
    }
    for (const h of HOSTS) {
      const addrs = (await ipJson(lab.ns(h), ["-6", "addr", "show", "dev", "gw0", "scope", "global"])) as Json[];
      expect(addrs.flatMap((a) => (a.addr_info ?? []).filter((x: Json) => x.local))).toEqual([]);
      expect((await ipJson(lab.ns(h), ["-6", "route", "show", "proto", "176"])) as Json[]).toEqual([]);
    }
    expect(await pingUntil(lab.ns("a"), MESH_IP.c)).toBe(true);
  });

  it("destroy removes the mesh from every host", async () => {
    for (const h of HOSTS) {
      const r = await lab.bolt(h, ["destroy"]);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(((await ipJson(lab.ns(h), ["-6", "rule", "show"])) as Json[]).filter((x) => x.protocol === "176")).toEqual([]);
    }
    await lab.expectNoSecrets();
  });
});
