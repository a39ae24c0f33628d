// `[wireguard.NAME]` point-to-point in a Boltfile (issue 4), between two namespaces on an
// underlay: A is the "server" (no endpoint for B: it learns B's address from B's handshake),
// B dials A with a keepalive; both share a preshared key from a 0600 file (relative paths,
// resolved against the config file's directory). Every allowed IP becomes a route through the
// interface; an allowed-IPs edit moves the routes without resetting the session; a failed
// apply rolls the peer set back; destroy restores the namespaces.
import { execa } from "execa";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKES, SKIP_REASON, ipJson, must, plannedOf, requireBuild, snapshot } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";
import { MeshLab, UNDERLAY, pingUntil, routeGet, sleep } from "./mesh-topology.js";
import type { HostId } from "./mesh-topology.js";
import { wgMountFile, wgSocketDir } from "../../src/exec/run-dir.js";

const ADDR = { a: "10.0.9.1", b: "10.0.9.2" } as const;
/** B's second interface address: `address` may be a list (like wg-quick's Address). */
const B_SECOND = "10.0.10.2/24";
/** A network behind B (an address on B's loopback), reachable because A's peer B allows it. */
const BEHIND_B = { subnet: "10.77.0.0/24", host: "10.77.0.1" } as const;
const PORT = 51820;

describe.skipIf(!!SKIP_REASON)("[wireguard.NAME] point-to-point between two namespaces", () => {
  const lab = new MeshLab(["a", "b"], false);
  const before = new Map<HostId, Snapshot>();
  let psk = "";

  beforeAll(async () => {
    requireBuild();
    await lab.build();
    await execa("sh", ["-c", "umask 077 && wg genpsk > keys/ab.psk"], { cwd: lab.sb.dir });
    psk = readFileSync(join(lab.sb.dir, "keys", "ab.psk"), "utf8").trim();
    await must(["ip", "-n", lab.ns("b"), "address", "add", `${BEHIND_B.host}/32`, "dev", "lo"]);
    for (const h of lab.hosts) before.set(h, await snapshot(lab.ns(h)));
  });
  afterAll(() => lab.cleanup());

  const boltfile = (h: HostId, o: { allowed?: string[]; extraPeer?: string; noPeer?: boolean } = {}): string => {
    const dev = lab.ifname(h);
    const other: HostId = h === "a" ? "b" : "a";
    const peer = o.noPeer
      ? ""
      : [
          `[[wireguard.${dev}.peers]]`,
          `public_key = "${lab.pub[other]}"`,
          `allowed_ips = ${JSON.stringify(o.allowed ?? (h === "a" ? [`${ADDR.b}/32`, BEHIND_B.subnet] : [`${ADDR.a}/32`]))}`,
          'preshared_key_file = "keys/ab.psk"',
          ...(h === "b" ? [`endpoint = "${UNDERLAY.a}:${PORT}"`, "persistent_keepalive = 5"] : []),
        ].join("\n");
    const text =
      [
        `[wireguard.${dev}]`,
        `private_key_file = "keys/${h}.key"`,
        // B dials out like a wg-quick client: no listen_port, the port wireguard-go picks is fine.
        ...(h === "a" ? [`listen_port = ${PORT}`] : []),
        // A's /32 (no connected prefix): every allowed IP of its peers gets a route. B's /24 already
        // routes A's 10.0.9.1 into the tunnel, so B gets none for it (wg-quick skips it too).
        `address = ${JSON.stringify(h === "a" ? `${ADDR.a}/32` : [`${ADDR.b}/24`, B_SECOND])}`,
        "",
        peer,
        o.extraPeer ?? "",
      ].join("\n") + "\n";
    return lab.sb.write(`${h}-bolt-network.toml`, text);
  };

  it("pings through the tunnel, installs a route per allowed IP, uses the preshared key", async () => {
    await lab.apply("a", boltfile("a"));
    await lab.apply("b", boltfile("b"));
    const wa = lab.ifname("a");
    const bAddrs = ((await ipJson(lab.ns("b"), ["-4", "addr", "show", "dev", lab.ifname("b")])) as Json[])[0].addr_info.map(
      (x: Json) => `${x.local}/${x.prefixlen}`,
    );
    expect(bAddrs.sort()).toEqual([`${ADDR.b}/24`, B_SECOND].sort());
    const routes = ((await ipJson(lab.ns("a"), ["-4", "route", "show", "proto", "176"])) as Json[]).map((r) => `${r.dst} ${r.dev}`).sort();
    expect(routes).toEqual([`${ADDR.b} ${wa}`, `${BEHIND_B.subnet} ${wa}`]);
    expect((await ipJson(lab.ns("b"), ["-4", "route", "show", "proto", "176"])) as Json[], "B: 10.0.9.1 is inside its own 10.0.9.2/24").toEqual([]);
    const tx = (await lab.peerStatus("b", "a")).tx_bytes;
    expect(await pingUntil(lab.ns("b"), ADDR.a)).toBe(true);
    expect((await lab.peerStatus("b", "a")).tx_bytes - tx).toBeGreaterThanOrEqual(116);
    expect(await pingUntil(lab.ns("a"), ADDR.b)).toBe(true);
    // The network behind B: routed into the tunnel by the allowed-IP route, accepted by B.
    expect((await routeGet(lab.ns("a"), BEHIND_B.host)).dev).toBe(wa);
    expect(await pingUntil(lab.ns("a"), BEHIND_B.host)).toBe(true);
    // Both ends hold the file's preshared key (the handshake would fail otherwise, too).
    for (const h of lab.hosts) expect((await lab.wg(h, "preshared-keys")).trim().split("\t")[1]).toBe(psk);
    // A learned B's endpoint from the handshake (roaming); that is not drift: the re-plan stays empty.
    const bPort = Number((await lab.wg("b", "listen-port")).trim());
    expect(bPort).toBeGreaterThan(0);
    expect((await lab.peerStatus("a", "b")).endpoint).toBe(`${UNDERLAY.b}:${bPort}`);
    const p = await lab.bolt("a", ["plan", "-f", boltfile("a"), "--detailed-exitcode"]);
    expect(p.code, p.stdout).toBe(0);
    // B has no listen_port in its file: the kernel-chosen port is no drift either (it used to never converge).
    const pb = await lab.bolt("b", ["plan", "-f", boltfile("b"), "--detailed-exitcode"]);
    expect(pb.code, pb.stdout).toBe(0);
  });

  it("an allowed-IPs edit moves the routes and keeps the session (same handshake, counters go on)", async () => {
    expect(await pingUntil(lab.ns("a"), ADDR.b)).toBe(true);
    await sleep(1100);
    const hs = (await lab.handshakes("a")).get(lab.pub.b)!;
    const rx = (await lab.peerStatus("a", "b")).rx_bytes;
    expect(hs).toBeGreaterThan(0);
    const file = boltfile("a", { allowed: [`${ADDR.b}/32`] });
    const r = await lab.bolt("a", ["plan", "--json", "-f", file]);
    expect(plannedOf(r.stdout)).toEqual([`delete route:main/${BEHIND_B.subnet}`, `update wg-peer:${lab.ifname("a")}/${lab.pub.b}`].sort());
    await lab.apply("a", file);
    expect(((await ipJson(lab.ns("a"), ["-4", "route", "show", "proto", "176"])) as Json[]).map((x) => x.dst)).toEqual([ADDR.b]);
    expect((await lab.wg("a", "allowed-ips")).trim().split("\t")[1]).toBe(`${ADDR.b}/32`);
    expect(await pingUntil(lab.ns("a"), ADDR.b)).toBe(true);
    expect((await lab.handshakes("a")).get(lab.pub.b)).toBe(hs);
    expect((await lab.peerStatus("a", "b")).rx_bytes).toBeGreaterThan(rx);
    await lab.apply("a", boltfile("a"));
  });

  it("a failed apply rolls the peer set back: edited peer restored, added peer removed, preshared key kept", async () => {
    const snap = await snapshot(lab.ns("a"));
    const peersBefore = await lab.peers("a");
    const x = (await must(["sh", "-c", "wg genkey | wg pubkey"])).trim();
    const file = boltfile("a", {
      allowed: [`${ADDR.b}/32`, BEHIND_B.subnet, "10.78.0.0/24"],
      extraPeer: [`[[wireguard.${lab.ifname("a")}.peers]]`, `public_key = "${x}"`, 'allowed_ips = ["10.0.9.50/32"]'].join("\n"),
    });
    // The route for the new peer fails (after the peer changes were made): everything is undone.
    const env = { PATH: `${FAKES}:${process.env.PATH}`, BOLT_FAULT_PATTERN: "10.0.9.50", BOLT_FAULT_HIT: join(lab.sb.dir, "fault-hit") };
    const r = await lab.bolt("a", ["apply", "-f", file], { env });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(existsSync(join(lab.sb.dir, "fault-hit")), "the fault was injected").toBe(true);
    expect(await lab.peers("a")).toEqual(peersBefore);
    expect((await lab.wg("a", "preshared-keys")).trim().split("\t")[1]).toBe(psk);
    expect(await snapshot(lab.ns("a"))).toEqual(snap);
    const p = await lab.bolt("a", ["plan", "-f", boltfile("a"), "--detailed-exitcode"]);
    expect(p.code, p.stdout).toBe(0);
    expect(await pingUntil(lab.ns("b"), ADDR.a)).toBe(true);
  });

  it("a failed apply that removed a peer puts it back with its preshared key", async () => {
    const peersBefore = await lab.peers("a");
    const x = (await must(["sh", "-c", "wg genkey | wg pubkey"])).trim();
    const file = boltfile("a", {
      noPeer: true,
      extraPeer: [`[[wireguard.${lab.ifname("a")}.peers]]`, `public_key = "${x}"`, 'allowed_ips = ["10.0.9.51/32"]'].join("\n"),
    });
    const env = { PATH: `${FAKES}:${process.env.PATH}`, BOLT_FAULT_PATTERN: "10.0.9.51", BOLT_FAULT_HIT: join(lab.sb.dir, "fault-hit-2") };
    const r = await lab.bolt("a", ["apply", "-f", file], { env });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(existsSync(join(lab.sb.dir, "fault-hit-2")), "the fault was injected").toBe(true);
    expect(r.stderr).toContain("rolled back, the kernel is as it was");
    expect(await lab.peers("a")).toEqual(peersBefore);
    expect((await lab.wg("a", "preshared-keys")).trim().split("\t")[1]).toBe(psk);
    const p = await lab.bolt("a", ["plan", "-f", boltfile("a"), "--detailed-exitcode"]);
    expect(p.code, p.stdout).toBe(0);
  });

  it("destroy restores both namespaces and stops wireguard-go; its runtime (mount namespace file, socket directory) goes too", async () => {
    for (const h of lab.hosts) {
      const r = await lab.bolt(h, ["destroy"]);
      expect(r.code, r.stderr).toBe(0);
      expect(await snapshot(lab.ns(h))).toEqual(before.get(h));
      expect(await lab.wgPids(h)).toEqual([]);
      expect([existsSync(wgMountFile(lab.ns(h))), existsSync(wgSocketDir(lab.ns(h)))]).toEqual([false, false]);
    }
  });

  it("neither private keys nor the preshared key appear in any output or in the state", async () => {
    await lab.expectNoSecrets([psk]);
  });
});
