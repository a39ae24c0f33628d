// bolt's [wireguard.NAME] side by side with wg-quick (wireguard-tools), in namespaces (issue 9):
//
//   ul    the client's LAN / underlay: bridge br0, 198.18.2.254 and 2001:db8:2::fe, MTU 1400
//   srv   198.18.2.1   the server (wg-quick first, then bolt), the only way to `inet`
//   cli   198.18.2.2   the bolt client
//   cli2  198.18.2.4   a wg-quick client with the same settings: the reference outcome
//   lan   198.18.2.3   a neighbour on the client's LAN (the anti-spoofing attacker)
//   inet  203.0.113.2  "the internet", behind srv only
//
// Same input, same kernel outcome: a full tunnel gets the same rule shape, the same MTU (the
// underlay's 1400 − 80), src_valid_mark, and the same drop for a spoofed packet from the LAN;
// traffic flows both ways with either side being wg-quick; a roamed peer stays where it roamed;
// an IPv6 underlay endpoint works.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SKIP_REASON, Sandbox, bolt, ipJson, must, requireBuild, run, sysctlGet, wgIn, writeWgKey } from "./harness.js";
import type { Json, RunOut } from "./harness.js";
import { pingUntil, routeGet, sleep } from "./mesh-topology.js";

const UL = { srv: "198.18.2.1", cli: "198.18.2.2", lan: "198.18.2.3", cli2: "198.18.2.4", router: "198.18.2.254" } as const;
const UL6 = { srv: "2001:db8:2::1", cli: "2001:db8:2::2", router: "2001:db8:2::fe" } as const;
const TUN = { srv: "10.0.8.1", cli: "10.0.8.2", cli2: "10.0.8.3" } as const;
const INET = { gw: "203.0.113.1", host: "203.0.113.2" } as const;
const PORT = 51820;
const UNDERLAY_MTU = 1400;
type Host = "srv" | "cli" | "cli2" | "lan" | "inet";

describe.skipIf(!!SKIP_REASON)("bolt and wg-quick side by side", () => {
  const sb = new Sandbox();
  const ns = (h: Host | "ul") => `${sb.prefix}${h}`;
  const pub: Record<string, string> = {};
  const priv: Record<string, string> = {};
  const keyFile = (h: string) => join(sb.dir, "keys", `${h}.key`);
  /** wg-quick interface names: its sockets are the host's, so they are unique per run */
  const wq = (h: "srv" | "cli2") => `wq${sb.id}${h === "srv" ? "s" : "c"}`;
  const common = (h: Host) => ["--netns", ns(h), "--state-dir", join(sb.stateDir, h)];
  const boltOn = async (h: Host, args: string[]): Promise<RunOut> => bolt([...args, ...common(h)]);
  const apply = async (h: Host, file: string) => {
    const r = await boltOn(h, ["apply", "-f", file]);
    expect(r.code, `apply ${h}: ${r.stdout}${r.stderr}`).toBe(0);
    const p = await boltOn(h, ["plan", "-f", file, "--detailed-exitcode"]);
    expect(p.code, `re-plan ${h}: ${p.stdout}${p.stderr}`).toBe(0);
  };
  const wgQuick = async (h: "srv" | "cli2", verb: "up" | "down", conf?: string) => {
    const file = join(sb.dir, `${wq(h)}.conf`);
    if (conf) writeFileSync(file, conf, { mode: 0o600 });
    const r = await run(["ip", "netns", "exec", ns(h), "wg-quick", verb, file]);
    if (verb === "up") expect(r.code, `wg-quick up in ${h}: ${r.stderr}`).toBe(0);
  };

  beforeAll(async () => {
    requireBuild();
    for (const h of ["ul", "srv", "cli", "cli2", "lan", "inet"] as const) {
      await sb.addNetns(h);
      await must(["ip", "-n", ns(h), "link", "set", "lo", "up"]);
    }
    await must(["ip", "-n", ns("ul"), "link", "add", "br0", "mtu", String(UNDERLAY_MTU), "type", "bridge"]);
    await must(["ip", "-n", ns("ul"), "address", "add", `${UL.router}/24`, "dev", "br0"]);
    await must(["ip", "-n", ns("ul"), "address", "add", `${UL6.router}/64`, "dev", "br0", "nodad"]);
    await must(["ip", "-n", ns("ul"), "link", "set", "br0", "up"]);
    for (const h of ["srv", "cli", "cli2", "lan"] as const) {
      await must([
        "ip",
        "-n",
        ns("ul"),
        "link",
        "add",
        `u${h}`,
        "mtu",
        String(UNDERLAY_MTU),
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "mtu",
        String(UNDERLAY_MTU),
        "netns",
        ns(h),
      ]);
      await must(["ip", "-n", ns("ul"), "link", "set", `u${h}`, "master", "br0", "up"]);
      await must(["ip", "-n", ns(h), "address", "add", `${UL[h]}/24`, "dev", "eth0"]);
      if (h === "srv" || h === "cli") await must(["ip", "-n", ns(h), "address", "add", `${UL6[h]}/64`, "dev", "eth0", "nodad"]);
      await must(["ip", "-n", ns(h), "link", "set", "eth0", "up"]);
      await must(["ip", "-n", ns(h), "route", "add", "default", "via", UL.router]);
    }
    // The internet, behind srv only (it routes the tunnel's addresses back to srv).
    await must(["ip", "-n", ns("srv"), "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", ns("inet")]);
    await must(["ip", "-n", ns("srv"), "address", "add", `${INET.gw}/24`, "dev", "up0"]);
    await must(["ip", "-n", ns("srv"), "link", "set", "up0", "up"]);
    await must(["ip", "-n", ns("inet"), "address", "add", `${INET.host}/24`, "dev", "eth0"]);
    await must(["ip", "-n", ns("inet"), "link", "set", "eth0", "up"]);
    await must(["ip", "-n", ns("inet"), "route", "add", "10.0.8.0/24", "via", INET.gw]);
    await must(["ip", "netns", "exec", ns("srv"), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    mkdirSync(join(sb.dir, "keys"), { mode: 0o700 });
    for (const h of ["srv", "cli", "cli2"]) {
      ({ priv: priv[h]!, pub: pub[h]! } = await writeWgKey(keyFile(h)));
    }
  }, 60_000);
  afterAll(async () => {
    for (const h of ["srv", "cli2"] as const) {
      await run(["ip", "-n", ns(h), "link", "del", wq(h)]);
      rmSync(`/run/wireguard/${wq(h)}.sock`, { force: true });
    }
    await sb.cleanup();
  }, 60_000);

  // Each case starts clean even if the one before failed half-way.
  beforeEach(async () => {
    for (const h of ["srv", "cli2"] as const) await run(["ip", "-n", ns(h), "link", "del", wq(h)]);
    for (const h of ["srv", "cli"] as const) await boltOn(h, ["destroy"]);
  });

  /** The wg-quick client (cli2): the same settings as bolt's client, AllowedIPs as given. */
  const cli2Conf = (allowed: string) =>
    [
      "[Interface]",
      `PrivateKey = ${priv.cli2}`,
      `Address = ${TUN.cli2}/24`,
      "",
      "[Peer]",
      `PublicKey = ${pub.srv}`,
      `Endpoint = ${UL.srv}:${PORT}`,
      `AllowedIPs = ${allowed}`,
      "PersistentKeepalive = 5",
    ].join("\n") + "\n";

  /** The bolt client: a full tunnel (0.0.0.0/0) or a split one. */
  const clientFile = (o: { full: boolean; endpoint?: string }) =>
    sb.write(
      `cli-${o.full ? "full" : "split"}.toml`,
      [
        "[wireguard.gw0]",
        `private_key_file = "${keyFile("cli")}"`,
        `address = "${TUN.cli}/24"`,
        "",
        "[[wireguard.gw0.peers]]",
        `public_key = "${pub.srv}"`,
        `endpoint = "${o.endpoint ?? `${UL.srv}:${PORT}`}"`,
        `allowed_ips = ${JSON.stringify(o.full ? ["0.0.0.0/0"] : ["10.0.8.0/24"])}`,
        "persistent_keepalive = 5",
      ].join("\n") + "\n",
    );

  /** What a full-tunnel client looks like in the kernel, whoever made it. */
  async function fullTunnelShape(h: "cli" | "cli2", dev: string) {
    const rules = (await ipJson(ns(h), ["rule", "show"])) as Json[];
    const suppress = rules.find((r) => r.suppress_prefixlen === 0);
    const notMark = rules.find((r) => r.not === null && r.fwmark !== undefined);
    const fwmark = (await wgShow(h, dev, "fwmark")).trim();
    const table = notMark?.table;
    const inTable = table ? ((await ipJson(ns(h), ["route", "show", "table", String(table)])) as Json[]) : [];
    const link = ((await ipJson(ns(h), ["link", "show", "dev", dev])) as Json[])[0];
    return {
      suppressLooksUpMain: suppress?.table === "main",
      notFwmarkIsTheInterfaceMark: notMark !== undefined && Number(notMark.fwmark) === Number(fwmark),
      tableHasDefaultViaTunnel: inTable.some((r) => r.dst === "default" && r.dev === dev),
      mtu: link.mtu,
      srcValidMark: await sysctlGet(ns(h), "net.ipv4.conf.all.src_valid_mark"),
    };
  }

  /** `wg-quick`'s own wg (host sockets) for its interfaces, bolt's (private sockets) for gw0. */
  const wgShow = (h: Host, dev: string, what: string) =>
    must(dev === "gw0" ? wgIn(ns(h), ["show", dev, what]) : ["ip", "netns", "exec", ns(h), "wg", "show", dev, what]);

  /** A ping from the LAN neighbour to a client's tunnel address, sent to the client's LAN address. */
  async function spoofFromLan(target: "cli" | "cli2"): Promise<boolean> {
    await run(["ip", "-n", ns("lan"), "route", "del", `${TUN[target]}/32`]);
    await must(["ip", "-n", ns("lan"), "route", "add", `${TUN[target]}/32`, "via", UL[target]]);
    return pingUntil(ns("lan"), TUN[target], 2);
  }

  it("wg-quick server, bolt client: split then full tunnel; the same outcome as a wg-quick client", async () => {
    await wgQuick(
      "srv",
      "up",
      [
        "[Interface]",
        `PrivateKey = ${priv.srv}`,
        `Address = ${TUN.srv}/24`,
        `ListenPort = ${PORT}`,
        "",
        "[Peer]",
        `PublicKey = ${pub.cli}`,
        `AllowedIPs = ${TUN.cli}/32`,
        "",
        "[Peer]",
        `PublicKey = ${pub.cli2}`,
        `AllowedIPs = ${TUN.cli2}/32`,
      ].join("\n") + "\n",
    );
    // Split tunnel first: the tunnel works, and (as with wg-quick) nothing guards the tunnel
    // address against the LAN — this proves the anti-spoofing check below can fail.
    await apply("cli", clientFile({ full: false }));
    expect(await pingUntil(ns("cli"), TUN.srv)).toBe(true);
    expect(await spoofFromLan("cli"), "split tunnel: the LAN reaches the tunnel address (wg-quick does the same)").toBe(true);
    expect(await pingUntil(ns("cli"), INET.host, 1), "split tunnel: the internet is not through the tunnel").toBe(false);

    await apply("cli", clientFile({ full: true }));
    await wgQuick("cli2", "up", cli2Conf("0.0.0.0/0"));
    for (const [h, dev] of [
      ["cli", "gw0"],
      ["cli2", wq("cli2")],
    ] as const) {
      // The default route goes into the tunnel; the underlay (and the handshake) stays on eth0.
      expect(await pingUntil(ns(h), INET.host), `${h}: the internet through the tunnel`).toBe(true);
      expect((await routeGet(ns(h), INET.host)).dev, h).toBe(dev);
      expect((await routeGet(ns(h), UL.router)).dev, `${h}: the LAN stays on eth0`).toBe("eth0");
      expect(await pingUntil(ns(h), UL.router), `${h}: the LAN answers`).toBe(true);
      expect(await spoofFromLan(h), `${h}: a spoofed packet from the LAN to the tunnel address is dropped`).toBe(false);
    }
    const [boltShape, wgQuickShape] = [await fullTunnelShape("cli", "gw0"), await fullTunnelShape("cli2", wq("cli2"))];
    expect(boltShape).toEqual(wgQuickShape);
    expect(boltShape).toEqual({
      suppressLooksUpMain: true,
      notFwmarkIsTheInterfaceMark: true,
      tableHasDefaultViaTunnel: true,
      mtu: UNDERLAY_MTU - 80,
      srcValidMark: "1",
    });
    // Back to split: every piece of the full tunnel goes again (rules, table route, nft rules).
    await apply("cli", clientFile({ full: false }));
    const rules = (await ipJson(ns("cli"), ["rule", "show"])) as Json[];
    expect(rules.filter((r) => r.suppress_prefixlen !== undefined || r.fwmark !== undefined)).toEqual([]);
    expect(await pingUntil(ns("cli"), INET.host, 1)).toBe(false);
    expect(await pingUntil(ns("cli"), TUN.srv)).toBe(true);
    expect((await boltOn("cli", ["destroy"])).code).toBe(0);
    await wgQuick("cli2", "down");
    await wgQuick("srv", "down");
  }, 120_000);

  const serverFile = (cliEndpoint?: string) =>
    sb.write(
      `srv${cliEndpoint ? "-ep" : ""}.toml`,
      [
        "[wireguard.gw0]",
        `private_key_file = "${keyFile("srv")}"`,
        `address = "${TUN.srv}/24"`,
        `listen_port = ${PORT}`,
        "",
        "[[wireguard.gw0.peers]]",
        `public_key = "${pub.cli}"`,
        `allowed_ips = ["${TUN.cli}/32"]`,
        ...(cliEndpoint ? [`endpoint = "${cliEndpoint}"`] : []),
        "",
        "[[wireguard.gw0.peers]]",
        `public_key = "${pub.cli2}"`,
        `allowed_ips = ["${TUN.cli2}/32"]`,
      ].join("\n") + "\n",
    );

  it("bolt server, wg-quick client (and a bolt client): traffic both ways; the server's MTU is wg-quick's", async () => {
    await apply("srv", serverFile());
    await wgQuick("cli2", "up", cli2Conf("10.0.8.0/24"));
    await apply("cli", clientFile({ full: false }));
    expect(await pingUntil(ns("cli2"), TUN.srv), "wg-quick client → bolt server").toBe(true);
    expect(await pingUntil(ns("srv"), TUN.cli2), "bolt server → wg-quick client").toBe(true);
    expect(await pingUntil(ns("srv"), TUN.cli), "bolt server → bolt client").toBe(true);
    // No endpoint for its peers and a default route on eth0 (MTU 1400): 1320, as wg-quick.
    expect(((await ipJson(ns("srv"), ["link", "show", "dev", "gw0"])) as Json[])[0].mtu).toBe(UNDERLAY_MTU - 80);
    expect(((await ipJson(ns("cli2"), ["link", "show", "dev", wq("cli2")])) as Json[])[0].mtu).toBe(UNDERLAY_MTU - 80);
    // The server learned both clients' endpoints from their handshakes: not drift.
    expect((await boltOn("srv", ["plan", "-f", serverFile(), "--detailed-exitcode"])).code).toBe(0);
    await wgQuick("cli2", "down");
    expect((await boltOn("cli", ["destroy"])).code).toBe(0);
    expect((await boltOn("srv", ["destroy"])).code).toBe(0);
  }, 120_000);

  it("roaming: a peer that moved (new source port, new handshake) is kept where it is, not reset to the configured endpoint", async () => {
    const cliAt = (port: number) =>
      sb.write(
        `cli-${port}.toml`,
        readFileSync(clientFile({ full: false }), "utf8").replace('address = "10.0.8.2/24"', `address = "10.0.8.2/24"\nlisten_port = ${port}`),
      );
    await apply("cli", cliAt(51821));
    await apply("srv", serverFile(`${UL.cli}:51821`));
    expect(await pingUntil(ns("srv"), TUN.cli)).toBe(true);
    // The client moves to another port and starts a new session (a NAT rebinding looks the same).
    expect((await boltOn("cli", ["destroy"])).code).toBe(0);
    await sleep(1100); // a handshake in a later second than the server's last write
    await apply("cli", cliAt(51822));
    let ep = "";
    for (let i = 0; i < 50 && !ep.endsWith(":51822"); i++) {
      await pingUntil(ns("cli"), TUN.srv, 1);
      ep =
        (await wgShow("srv", "gw0", "endpoints"))
          .split("\n")
          .find((l) => l.startsWith(pub.cli!))
          ?.split("\t")[1] ?? "";
    }
    expect(ep, "the server follows the client (WireGuard roaming)").toBe(`${UL.cli}:51822`);
    const plan = await boltOn("srv", ["plan", "-f", serverFile(`${UL.cli}:51821`), "--detailed-exitcode"]);
    expect(plan.code, `a roam is not drift:\n${plan.stdout}`).toBe(0);
    // mesh status says where the peer is and where bolt had pointed it.
    const st = JSON.parse((await boltOn("srv", ["mesh", "status", "--json"])).stdout) as Json;
    const peer = (st.interfaces[0].peers as Json[]).find((p) => p.public_key === pub.cli);
    expect(peer).toMatchObject({ endpoint: `${UL.cli}:51822`, roamed_from: `${UL.cli}:51821` });
    expect((await boltOn("srv", ["mesh", "status"])).stdout).toContain(`endpoint ${UL.cli}:51822 (roamed; configured ${UL.cli}:51821)`);
    expect(await pingUntil(ns("srv"), TUN.cli)).toBe(true);
    // A new endpoint in the config is applied (the config changed, not the peer).
    const moved = await boltOn("srv", ["plan", "-f", serverFile(`${UL.cli}:51899`), "--detailed-exitcode"]);
    expect(moved.code).toBe(2);
    expect(moved.stdout).toContain(`"${UL.cli}:51822" -> "${UL.cli}:51899"`);
    expect((await boltOn("cli", ["destroy"])).code).toBe(0);
    expect((await boltOn("srv", ["destroy"])).code).toBe(0);
  }, 120_000);

  it("an IPv6 underlay endpoint ([2001:db8:2::1]:51820), IPv6 tunnel addresses and IPv6 allowed IPs", async () => {
    // srv: 10.0.8.1/24 + fd00:8::1/64; its peer cli also owns fd00:77::/64 (an address on cli's lo).
    const srv = sb.write(
      "srv-v6.toml",
      [
        "[wireguard.gw0]",
        `private_key_file = "${keyFile("srv")}"`,
        `address = ["${TUN.srv}/24", "fd00:8::1/64"]`,
        `listen_port = ${PORT}`,
        "",
        "[[wireguard.gw0.peers]]",
        `public_key = "${pub.cli}"`,
        `allowed_ips = ["${TUN.cli}/32", "fd00:8::2/128", "fd00:77::/64"]`,
      ].join("\n") + "\n",
    );
    const cli = sb.write(
      "cli-v6.toml",
      [
        "[wireguard.gw0]",
        `private_key_file = "${keyFile("cli")}"`,
        `address = ["${TUN.cli}/24", "fd00:8::2/64"]`,
        "",
        "[[wireguard.gw0.peers]]",
        `public_key = "${pub.srv}"`,
        `endpoint = "[${UL6.srv}]:${PORT}"`,
        'allowed_ips = ["10.0.8.0/24", "fd00:8::/64"]',
        "persistent_keepalive = 5",
      ].join("\n") + "\n",
    );
    await must(["ip", "-n", ns("cli"), "address", "add", "fd00:77::1/128", "dev", "lo"]);
    await apply("srv", srv);
    await apply("cli", cli);
    expect(await pingUntil(ns("cli"), TUN.srv)).toBe(true);
    expect(await wgShow("cli", "gw0", "endpoints")).toContain(`[${UL6.srv}]:${PORT}`);
    // DAD makes a new IPv6 address tentative for a moment: retry.
    let ok6 = false;
    for (let i = 0; i < 10 && !ok6; i++)
      ok6 = (await run(["ip", "netns", "exec", ns("srv"), "ping", "-6", "-n", "-c", "1", "-W", "1", "fd00:8::2"])).code === 0;
    expect(ok6, "srv → cli over IPv6 inside the tunnel").toBe(true);
    expect((await run(["ip", "netns", "exec", ns("srv"), "ping", "-6", "-n", "-c", "1", "-W", "2", "fd00:77::1"])).code, "the IPv6 allowed IP's route").toBe(0);
    // Routes as wg-quick makes them: fd00:77::/64 (outside the interface's own prefix) only.
    const r6 = ((await ipJson(ns("srv"), ["-6", "route", "show", "proto", "176"])) as Json[]).map((r) => `${r.dst} ${r.dev}`);
    expect(r6).toEqual(["fd00:77::/64 gw0"]);
    expect(((await ipJson(ns("cli"), ["-6", "route", "show", "proto", "176"])) as Json[]).length).toBe(0);
    expect((await wgShow("srv", "gw0", "allowed-ips")).trim().split("\t")[1]!.split(" ").sort()).toEqual(["10.0.8.2/32", "fd00:77::/64", "fd00:8::2/128"]);
    // Back to IPv4 only: the IPv6 addresses, allowed IPs and route go; the re-plan is empty.
    await apply("srv", serverFile());
    expect(((await ipJson(ns("srv"), ["-6", "route", "show", "proto", "176"])) as Json[]).length).toBe(0);
    expect(((await ipJson(ns("srv"), ["-6", "addr", "show", "dev", "gw0", "scope", "global"])) as Json[])[0]?.addr_info ?? []).toEqual([]);
    expect((await boltOn("cli", ["destroy"])).code).toBe(0);
    expect((await boltOn("srv", ["destroy"])).code).toBe(0);
  }, 120_000);

  it("an IPv6 full tunnel (::/0 next to 0.0.0.0/0): the same policy routing in ip -6 rule, ::/0 in table 20100, the underlay off the tunnel", async () => {
    const srv = sb.write(
      "srv-v6-full.toml",
      [
        "[wireguard.gw0]",
        `private_key_file = "${keyFile("srv")}"`,
        `address = ["${TUN.srv}/24", "fd00:8::1/64"]`,
        `listen_port = ${PORT}`,
        "",
        "[[wireguard.gw0.peers]]",
        `public_key = "${pub.cli}"`,
        `allowed_ips = ["${TUN.cli}/32", "fd00:8::2/128"]`,
      ].join("\n") + "\n",
    );
    const full = (v6: boolean) =>
      sb.write(
        `cli-full${v6 ? "6" : "4"}.toml`,
        [
          "[wireguard.gw0]",
          `private_key_file = "${keyFile("cli")}"`,
          `address = ["${TUN.cli}/24", "fd00:8::2/64"]`,
          "",
          "[[wireguard.gw0.peers]]",
          `public_key = "${pub.srv}"`,
          `endpoint = "[${UL6.srv}]:${PORT}"`,
          `allowed_ips = ${JSON.stringify(v6 ? ["0.0.0.0/0", "::/0"] : ["0.0.0.0/0", "fd00:8::/64"])}`,
          "persistent_keepalive = 5",
        ].join("\n") + "\n",
      );
    await apply("srv", srv);
    await apply("cli", full(true));
    const c = ns("cli");
    const mine = async () => ((await ipJson(c, ["-6", "rule", "show"])) as Json[]).filter((r) => r.protocol === "176");
    expect((await mine()).map((r) => `${r.priority} ${r.table} ${r.suppress_prefixlen ?? ""}${r.not === null ? "not " : ""}${r.fwmark ?? ""}`)).toEqual([
      "20000 main 0",
      "20001 20100 not 0xb000000",
    ]);
    expect(((await ipJson(c, ["-6", "route", "show", "table", "20100"])) as Json[]).map((r) => `${r.dst} ${r.dev}`)).toEqual(["default gw0"]);
    expect((await routeGet(c, "2001:db8:ffff::1")).dev, "IPv6 beyond the underlay: into the tunnel").toBe("gw0");
    expect((await routeGet(c, UL6.srv)).dev, "the IPv6 underlay stays on eth0 (suppress_prefixlength 0)").toBe("eth0");
    expect((await routeGet(c, UL6.srv, 0x0b000000)).dev, "WireGuard's own marked packets: main").toBe("eth0");
    expect(await wgShow("cli", "gw0", "fwmark")).toContain("0xb000000");
    let ok6 = false;
    for (let i = 0; i < 10 && !ok6; i++) ok6 = (await run(["ip", "netns", "exec", c, "ping", "-6", "-n", "-c", "1", "-W", "1", "fd00:8::1"])).code === 0;
    expect(ok6, "cli → srv over IPv6 inside the IPv6 full tunnel").toBe(true);
    // IPv4 full tunnel only: the IPv6 rules and default route go; the IPv4 ones stay.
    await apply("cli", full(false));
    expect(await mine()).toEqual([]);
    expect(((await ipJson(c, ["rule", "show"])) as Json[]).filter((r) => r.protocol === "176").length).toBe(2);
    expect((await boltOn("cli", ["destroy"])).code).toBe(0);
    expect(((await ipJson(c, ["rule", "show"])) as Json[]).filter((r) => r.protocol === "176")).toEqual([]);
    expect((await boltOn("srv", ["destroy"])).code).toBe(0);
  }, 120_000);
});
