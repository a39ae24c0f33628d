// GhostWire mesh on the real kernel (issue 4): three hosts apply their own ghostwire.toml; every
// host reaches every other through the tunnel (the WireGuard transfer counters prove the
// packets crossed it), <host>.mesh names resolve everywhere, A's LAN is reachable from a host
// that accepts routes and not from one that does not, A as exit node carries B's default route
// while B's underlay stays off the tunnel, and destroy leaves every namespace as it found it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, ipJson, requireBuild, run, snapshot, sysctlGet } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";
import { HOSTS, INTERNET, LAN, MESH_IP, MeshLab, UNDERLAY, hostname, pingUntil, routeGet } from "./mesh-topology.js";
import type { HostId, MeshFileOpts } from "./mesh-topology.js";

const EXIT_MARK = 0x0b000000;

describe.skipIf(!!SKIP_REASON)("mesh: connectivity, subnet routes, exit node, magic DNS, destroy", () => {
  const lab = new MeshLab();
  const before = new Map<HostId, Snapshot>();
  // C already has a namespace hosts file of its own: bolt may only add and remove its block.
  const USER_HOSTS = "127.0.0.1 localhost\n10.1.2.3 userhost.lan\n";
  const cHosts = () => `/etc/netns/${lab.ns("c")}/hosts`;

  beforeAll(async () => {
    requireBuild();
    await lab.build();
    for (const h of HOSTS) before.set(h, await snapshot(lab.ns(h)));
    mkdirSync(`/etc/netns/${lab.ns("c")}`, { recursive: true });
    writeFileSync(cHosts(), USER_HOSTS);
  });
  afterAll(() => lab.cleanup());

  const applyAll = async (o: MeshFileOpts = {}, extra: string[] = []) => {
    for (const h of HOSTS) await lab.apply(h, lab.meshFile(h, o), extra);
  };

  it("every host pings every other host's mesh address, through the tunnel", async () => {
    await applyAll();
    for (const h of HOSTS) {
      const ns = lab.ns(h);
      const dev = lab.ifname(h);
      const l = ((await ipJson(ns, ["-d", "link", "show"])) as Json[]).find((x) => x.ifname === dev);
      // userspace WireGuard: a tun device served by wireguard-go, tagged as bolt's
      expect(l?.linkinfo?.info_kind).toBe("tun");
      expect(l.ifalias).toMatch(/^bolt1,/);
      expect(l.flags).toContain("UP");
      expect(l.mtu).toBe(1420);
      expect(await lab.wgPids(h)).toHaveLength(1);
      const addrs = ((await ipJson(ns, ["-4", "addr", "show", "dev", dev])) as Json[])[0].addr_info.map((a: Json) => `${a.local}/${a.prefixlen}`);
      expect(addrs).toEqual([`${MESH_IP[h]}/32`]);
      const routes = ((await ipJson(ns, ["-4", "route", "show", "proto", "176"])) as Json[]).map((r) => `${r.dst} ${r.dev}`).sort();
      expect(routes).toEqual(
        HOSTS.filter((p) => p !== h)
          .map((p) => `${MESH_IP[p]} ${dev}`)
          .sort(),
      );
    }
    // Every machine-readable view of the state, at debug log level (scanned for keys at the end).
    for (const h of HOSTS) {
      const show = await lab.bolt(h, ["show", "--json"]);
      expect(show.code, show.stderr).toBe(0);
      expect(show.stdout).toContain(lab.ifname(h));
      expect(show.stdout).toContain(lab.pub[HOSTS.find((x) => x !== h)!]);
      // Which implementation runs: no kernel module on this machine class, so wireguard-go.
      const wgRes = (JSON.parse(show.stdout).resources as Json[]).find((r) => r.kind === "wireguard");
      expect(wgRes.spec.type).toBe("userspace");
      expect(((await lab.status(h)).interfaces as Json[])[0].implementation).toBe("wireguard-go");
      const plan = await lab.bolt(h, ["plan", "--json", "--show-commands", "-f", lab.meshFile(h)]);
      expect(plan.code, plan.stderr).toBe(0);
    }
    for (const from of HOSTS) {
      for (const to of HOSTS.filter((x) => x !== from)) {
        const sent = await lab.peerStatus(from, to);
        const got = await lab.peerStatus(to, from);
        expect(await pingUntil(lab.ns(from), MESH_IP[to]), `${from} → ${to}`).toBe(true);
        const sentAfter = await lab.peerStatus(from, to);
        const gotAfter = await lab.peerStatus(to, from);
        // An ICMP echo inside WireGuard is at least 84 + 32 bytes of transport data each way.
        expect(sentAfter.tx_bytes - sent.tx_bytes, `${from} sent to ${to} through the tunnel`).toBeGreaterThanOrEqual(116);
        expect(gotAfter.rx_bytes - got.rx_bytes, `${to} received from ${from} through the tunnel`).toBeGreaterThanOrEqual(116);
        expect(sentAfter.latest_handshake).toBeGreaterThan(0);
        expect(sentAfter.endpoint).toBe(`${UNDERLAY[to]}:41641`);
      }
    }
  });

  it("magic DNS: <hostname>.mesh resolves on every node, in the namespace's own hosts file", async () => {
    for (const h of HOSTS) {
      expect(existsSync(`/etc/netns/${lab.ns(h)}/hosts`)).toBe(true);
      for (const p of HOSTS) {
        const r = await run(["ip", "netns", "exec", lab.ns(h), "getent", "hosts", `${hostname(p)}.mesh`]);
        expect(r.code, `${hostname(p)}.mesh on ${h}`).toBe(0);
        expect(r.stdout.trim().split(/\s+/)).toEqual([MESH_IP[p], `${hostname(p)}.mesh`]);
      }
    }
    expect(await pingUntil(lab.ns("b"), "host-c.mesh")).toBe(true);
    // C's own entries are still there, above bolt's block.
    const c = await run(["ip", "netns", "exec", lab.ns("c"), "getent", "hosts", "userhost.lan"]);
    expect(c.stdout.trim().split(/\s+/)).toEqual(["10.1.2.3", "userhost.lan"]);
    expect(readFileSync(cHosts(), "utf8").startsWith(USER_HOSTS)).toBe(true);
    // The host's own /etc/hosts is not touched by a namespace target.
    expect((await run(["getent", "hosts", "host-c.mesh"])).code).not.toBe(0);
  });

  it("subnet routes: A's LAN is reachable from B (accept_routes), not from C (it does not accept)", async () => {
    expect(await pingUntil(lab.ns("b"), LAN.host, 1)).toBe(false);
    await applyAll({ world: { a: { advertise: [LAN.subnet] }, b: { acceptRoutes: true } } }, ["--json"]);
    const bRoutes = ((await ipJson(lab.ns("b"), ["-4", "route", "show", "proto", "176"])) as Json[]).map((r) => `${r.dst} ${r.dev}`);
    expect(bRoutes).toContain(`${LAN.subnet} ${lab.ifname("b")}`);
    const cRoutes = ((await ipJson(lab.ns("c"), ["-4", "route", "show"])) as Json[]).map((r) => r.dst);
    expect(cRoutes).not.toContain(LAN.subnet);
    // A forwards (bolt set the sysctl) and masquerades: the LAN host has no route back to the mesh.
    expect(await sysctlGet(lab.ns("a"), "net.ipv4.ip_forward")).toBe("1");
    const tx = (await lab.peerStatus("b", "a")).tx_bytes;
    expect(await pingUntil(lab.ns("b"), LAN.host)).toBe(true);
    expect((await lab.peerStatus("b", "a")).tx_bytes).toBeGreaterThan(tx);
    expect(await pingUntil(lab.ns("c"), LAN.host, 1)).toBe(false);
  });

  it("exit node: A carries B's default route; B's underlay stays off the tunnel", async () => {
    const world = { a: { advertise: [LAN.subnet], exitNode: true }, b: { acceptRoutes: true, useExitNode: "a" as const } };
    // Before: B's default route goes to the underlay router, which knows no internet.
    expect(await pingUntil(lab.ns("b"), INTERNET.host, 1)).toBe(false);
    await applyAll({ world });
    const b = lab.ns("b");
    const gwb = lab.ifname("b");
    const rules = ((await ipJson(b, ["rule", "show"])) as Json[]).filter((r) => r.protocol === "176");
    expect(rules.map((r) => [r.priority, r.table, r.suppress_prefixlen ?? null, r.fwmark ?? null, "not" in r])).toEqual([
      [20000, "main", 0, null, false],
      [20001, "20100", null, "0xb000000", true],
    ]);
    const t = (await ipJson(b, ["-4", "route", "show", "table", "20100"])) as Json[];
    expect(t.map((r) => `${r.dst} ${r.dev} ${r.protocol}`)).toEqual([`default ${gwb} 176`]);
    expect((await lab.wg("b", "fwmark")).trim()).toBe("0xb000000");

    // The kernel's routing decisions: the internet goes into the tunnel, the local underlay and
    // WireGuard's own (marked) packets do not; the mesh and the LAN keep their own routes.
    expect((await routeGet(b, INTERNET.host)).dev).toBe(gwb);
    expect((await routeGet(b, "192.0.2.77")).dev).toBe(gwb);
    expect(await routeGet(b, "192.0.2.77", EXIT_MARK)).toMatchObject({ dev: "eth0", gateway: UNDERLAY.router });
    expect((await routeGet(b, UNDERLAY.c)).dev).toBe("eth0");
    expect((await routeGet(b, UNDERLAY.a)).dev).toBe("eth0");
    expect((await routeGet(b, MESH_IP.c)).dev).toBe(gwb);

    const tx = (await lab.peerStatus("b", "a")).tx_bytes;
    expect(await pingUntil(b, INTERNET.host)).toBe(true);
    expect((await lab.peerStatus("b", "a")).tx_bytes - tx).toBeGreaterThanOrEqual(116);
    // The underlay stays reachable directly, and the mesh and the LAN still work.
    expect(await pingUntil(b, UNDERLAY.c)).toBe(true);
    expect(await pingUntil(b, UNDERLAY.router)).toBe(true);
    expect(await pingUntil(b, MESH_IP.c)).toBe(true);
    expect(await pingUntil(b, LAN.host)).toBe(true);
    // C does not use the exit node: no internet for it.
    expect(await pingUntil(lab.ns("c"), INTERNET.host, 1)).toBe(false);
  });

  it("destroy removes interfaces, wireguard-go processes, routes, rules, nft entries and the hosts block", async () => {
    for (const h of HOSTS) {
      const r = await lab.bolt(h, ["destroy"]);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const h of HOSTS) {
      expect(await snapshot(lab.ns(h)), `namespace of ${h} after destroy`).toEqual(before.get(h));
      expect(await lab.wgPids(h)).toEqual([]);
      expect(existsSync(lab.socket(h))).toBe(false);
      // bolt removes the /etc/netns dir it created; C's own hosts file is back to what it was.
      if (h === "c") expect(readFileSync(cHosts(), "utf8")).toBe(USER_HOSTS);
      else expect(existsSync(`/etc/netns/${lab.ns(h)}`)).toBe(false);
      expect(await sysctlGet(lab.ns(h), "net.ipv4.ip_forward")).toBe("0");
      const p = await lab.bolt(h, ["plan", "-f", lab.meshFile(h), "--detailed-exitcode"]);
      expect(p.code).toBe(2);
    }
  });

  it("no private key appears in any output (debug logs, JSON, plans) or in the state", async () => {
    await lab.expectNoSecrets();
  });
});
