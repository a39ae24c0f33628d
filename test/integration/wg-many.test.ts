// Many WireGuard hosts on one machine, all with the default interface name `gw0` (issue 9):
// a hub and 50 spokes, each a namespace on one underlay bridge, each applied by its own
// `bolt apply --netns` (four at a time). wireguard-go's control socket would be
// /var/run/wireguard/gw0.sock for all of them; bolt gives each namespace its own directory
// (a private mount namespace), so every spoke reaches the hub through its tunnel. Then the
// same on a host whose mounts have shared propagation (systemd's default): bolt's run dir is
// made a private mount first, as `ip netns` does for /run/netns.
import { execa } from "execa";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wgMountFile } from "../../src/exec/run-dir.js";
import { SKIP_REASON, Sandbox, bolt, must, releaseWgRuntime, requireBuild, run, wgIn, wgPidsIn, writeWgKey } from "./harness.js";
import { pool } from "../../src/exec/tools.js";

const SPOKES = 50;
const PORT = 51820;
const UL = (i: number) => `198.18.1.${i + 10}`; // spoke i's underlay address
const HUB_UL = "198.18.1.1";
const MESH = (i: number) => `10.99.0.${i + 2}`; // spoke i's tunnel address
const HUB = "10.99.0.1";

const mounted = (path: string) => readFileSync("/proc/self/mountinfo", "utf8").includes(` ${path} `);

describe.skipIf(!!SKIP_REASON)("many namespaces, each with gw0", () => {
  const sb = new Sandbox();
  const ns = (s: string) => `${sb.prefix}${s}`;
  const spokes = Array.from({ length: SPOKES }, (_, i) => i);
  const pub: Record<string, string> = {};
  const files: Record<string, string> = {};
  const common = (n: string) => ["--netns", n, "--state-dir", join(sb.stateDir, n)];

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns("ul");
    await must(["ip", "-n", ns("ul"), "link", "add", "br0", "type", "bridge"]);
    await must(["ip", "-n", ns("ul"), "link", "set", "br0", "up"]);
    mkdirSync(join(sb.dir, "keys"), { mode: 0o700 });
    const hosts = ["hub", ...spokes.map((i) => `s${i}`)];
    for (const [k, h] of hosts.entries()) {
      await sb.addNetns(h);
      await must(["ip", "-n", ns("ul"), "link", "add", `u${k}`, "type", "veth", "peer", "name", "eth0", "netns", ns(h)]);
      await must(["ip", "-n", ns("ul"), "link", "set", `u${k}`, "master", "br0", "up"]);
      await must(["ip", "-n", ns(h), "address", "add", `${h === "hub" ? HUB_UL : UL(k - 1)}/24`, "dev", "eth0"]);
      await must(["ip", "-n", ns(h), "link", "set", "eth0", "up"]);
      await must(["ip", "-n", ns(h), "link", "set", "lo", "up"]);
      pub[h] = (await writeWgKey(join(sb.dir, "keys", `${h}.key`))).pub;
    }
    const hubPeers = spokes.map((i) => ["[[wireguard.gw0.peers]]", `public_key = "${pub[`s${i}`]}"`, `allowed_ips = ["${MESH(i)}/32"]`].join("\n"));
    files.hub = sb.write(
      "hub.toml",
      ["[wireguard.gw0]", `private_key_file = "keys/hub.key"`, `listen_port = ${PORT}`, `address = "${HUB}/24"`, "", ...hubPeers].join("\n") + "\n",
    );
    for (const i of spokes)
      files[`s${i}`] = sb.write(
        `s${i}.toml`,
        [
          "[wireguard.gw0]",
          `private_key_file = "keys/s${i}.key"`,
          `address = "${MESH(i)}/24"`,
          "",
          "[[wireguard.gw0.peers]]",
          `public_key = "${pub.hub}"`,
          `endpoint = "${HUB_UL}:${PORT}"`,
          `allowed_ips = ["${HUB}/32"]`,
          "persistent_keepalive = 25",
        ].join("\n") + "\n",
      );
  }, 120_000);
  afterAll(() => sb.cleanup(), 120_000);

  it(`a hub and ${SPOKES} spokes: one wireguard-go and one control socket per namespace, every spoke pings the hub`, async () => {
    const t0 = Date.now();
    const hosts = ["hub", ...spokes.map((i) => `s${i}`)];
    const applied = await pool(hosts, 4, async (h) => {
      const r = await bolt(["apply", "-f", files[h]!, ...common(ns(h))]);
      const p = await bolt(["plan", "-f", files[h]!, "--detailed-exitcode", ...common(ns(h))]);
      return { h, r, p };
    });
    const seconds = (Date.now() - t0) / 1000;
    for (const { h, r, p } of applied) {
      expect(r.code, `apply ${h}: ${r.stderr}`).toBe(0);
      expect(p.code, `re-plan ${h}: ${p.stdout}${p.stderr}`).toBe(0);
    }
    console.log(`wg-many: ${hosts.length} namespaces with gw0 applied (and re-planned) in ${seconds.toFixed(1)} s, 4 at a time`);
    // One wireguard-go per namespace, each serving its own key through its own socket.
    const pids = new Set<number>();
    for (const h of hosts) {
      const here = await wgPidsIn(ns(h), "gw0");
      expect(here, `one wireguard-go gw0 in ${h}`).toHaveLength(1);
      pids.add(here[0]!);
      expect((await must(wgIn(ns(h), ["show", "gw0", "public-key"]))).trim(), `${h}'s gw0 has ${h}'s key`).toBe(pub[h]);
    }
    expect(pids.size).toBe(hosts.length);
    const pings = await pool(spokes, 8, async (i) => (await run(["ip", "netns", "exec", ns(`s${i}`), "ping", "-c", "1", "-W", "3", HUB])).code);
    expect(pings.map((c, i) => `s${i}:${c}`).filter((x) => !x.endsWith(":0"))).toEqual([]);
    const dump = (await must(wgIn(ns("hub"), ["show", "gw0", "dump"]))).split("\n").slice(1).filter(Boolean);
    expect(dump).toHaveLength(SPOKES);
    expect(
      dump.filter((l) => Number(l.split("\t")[4]) > 0),
      "every spoke has a handshake with the hub",
    ).toHaveLength(SPOKES);
  }, 300_000);

  it("destroy in each namespace stops its wireguard-go and releases its socket directory", async () => {
    const hosts = ["hub", ...spokes.map((i) => `s${i}`)];
    const r = await pool(hosts, 4, (h) => bolt(["destroy", ...common(ns(h))]));
    expect(r.filter((x) => x.code !== 0).map((x) => x.stderr)).toEqual([]);
    for (const h of hosts) {
      for (let t = 0; t < 30 && (await wgPidsIn(ns(h), "gw0")).length; t++) await new Promise((res) => setTimeout(res, 100));
      expect(await wgPidsIn(ns(h), "gw0"), h).toEqual([]);
      expect(mounted(wgMountFile(ns(h))), `${h}: its mount namespace is released`).toBe(false);
    }
  }, 300_000);
});

describe.skipIf(!!SKIP_REASON)("a host whose mounts propagate (shared, as under systemd)", () => {
  const sb = new Sandbox();
  let shared = "";
  let env: Record<string, string> = {};
  const wgDir = () => join(shared, "run", "wg");

  beforeAll(async () => {
    requireBuild();
    // A shared mount of our own, in a temp dir: bolt's run dir lives inside it.
    shared = mkdtempSync(join(tmpdir(), "bolt-it-shared-"));
    await must(["mount", "--bind", shared, shared]);
    await must(["mount", "--make-shared", shared]);
    env = { BOLT_RUN_DIR: join(shared, "run") };
    await sb.addNetns();
    await must(["ip", "-n", sb.target, "link", "set", "lo", "up"]);
    mkdirSync(join(sb.dir, "keys"), { mode: 0o700 });
    await writeWgKey(join(sb.dir, "keys", "a.key"));
  });
  afterAll(async () => {
    // Our run dir: its nsfs file, its private bind mount, then our shared mount.
    if (shared) {
      if (existsSync(join(wgDir(), `${sb.target}.mnt`)) && mounted(join(wgDir(), `${sb.target}.mnt`))) await run(["umount", join(wgDir(), `${sb.target}.mnt`)]);
      while (mounted(wgDir())) if ((await run(["umount", wgDir()])).code !== 0) break;
    }
    await releaseWgRuntime(sb.target);
    await sb.cleanup();
    if (shared) {
      await run(["umount", shared]);
      rmSync(shared, { recursive: true, force: true });
    }
  });

  it("the run dir is made a private mount (once), gw0 comes up, destroy releases it", async () => {
    const file = sb.write("a.toml", ["[wireguard.gw0]", 'private_key_file = "keys/a.key"', 'address = "10.99.1.1/24"'].join("\n") + "\n");
    const r = await sb.bolt(["apply", "-f", file], { env });
    expect(r.code, r.stderr).toBe(0);
    expect((await sb.bolt(["plan", "-f", file, "--detailed-exitcode"], { env })).code).toBe(0);
    const info = readFileSync("/proc/self/mountinfo", "utf8").split("\n");
    const own = info.filter((l) => l.split(" ")[4] === wgDir());
    expect(own, "one bind mount of the run dir's wg directory").toHaveLength(1);
    expect(own[0], "not shared").not.toMatch(/ shared:\d+/);
    expect(info.some((l) => l.split(" ")[4] === join(wgDir(), `${sb.target}.mnt`) && l.includes(" nsfs "))).toBe(true);
    expect(existsSync(join(wgDir(), sb.target, "gw0.sock"))).toBe(true);
    expect((await sb.bolt(["destroy"], { env })).code).toBe(0);
    expect(mounted(join(wgDir(), `${sb.target}.mnt`))).toBe(false);
  });
});
