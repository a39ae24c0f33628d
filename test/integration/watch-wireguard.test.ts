// `bolt watch` keeping a WireGuard host converged (issue 9): two namespaces on an underlay, both
// with `gw0`; host A runs the daemon. A wireguard-go killed by hand is started again (through
// A's own control-socket directory) and the tunnel carries traffic; a resync does not reset the
// endpoint of a peer that roamed.
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import type { ResultPromise } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOLT_BIN, SKIP_REASON, Sandbox, bolt, must, requireBuild, run, wgIn, wgPidsIn, writeWgKey } from "./harness.js";
import { pingUntil } from "./mesh-topology.js";
import { freePort, httpGet, sleep, waitFor } from "./watch-helpers.js";

const UL = { a: "198.18.3.1", b: "198.18.3.2" } as const;
const TUN = { a: "10.0.7.1", b: "10.0.7.2" } as const;

describe.skipIf(!!SKIP_REASON)("bolt watch with WireGuard", () => {
  const sb = new Sandbox();
  const ns = (h: "a" | "b" | "ul") => `${sb.prefix}${h}`;
  const pub: Record<string, string> = {};
  const key = (h: string) => join(sb.dir, "keys", `${h}.key`);
  let daemon: ResultPromise;
  let base = "";
  const file = (h: "a" | "b", bPort = 51822) => {
    const other = h === "a" ? "b" : "a";
    return sb.write(
      `${h}.toml`,
      [
        "[wireguard.gw0]",
        `private_key_file = "${key(h)}"`,
        `address = "${TUN[h]}/24"`,
        `listen_port = ${h === "a" ? 51821 : bPort}`,
        "",
        "[[wireguard.gw0.peers]]",
        `public_key = "${pub[other]}"`,
        `allowed_ips = ["${TUN[other]}/32"]`,
        // A knows where B is (51822); B dials A.
        `endpoint = "${UL[other]}:${h === "a" ? 51822 : 51821}"`,
        ...(h === "b" ? ["persistent_keepalive = 2"] : []),
      ].join("\n") + "\n",
    );
  };
  const onB = (args: string[]) => bolt([...args, "--netns", ns("b"), "--state-dir", join(sb.stateDir, "b")]);

  beforeAll(async () => {
    requireBuild();
    for (const h of ["ul", "a", "b"] as const) {
      await sb.addNetns(h);
      await must(["ip", "-n", ns(h), "link", "set", "lo", "up"]);
    }
    await must(["ip", "-n", ns("ul"), "link", "add", "br0", "type", "bridge"]);
    await must(["ip", "-n", ns("ul"), "link", "set", "br0", "up"]);
    for (const h of ["a", "b"] as const) {
      await must(["ip", "-n", ns("ul"), "link", "add", `u${h}`, "type", "veth", "peer", "name", "eth0", "netns", ns(h)]);
      await must(["ip", "-n", ns("ul"), "link", "set", `u${h}`, "master", "br0", "up"]);
      await must(["ip", "-n", ns(h), "address", "add", `${UL[h]}/24`, "dev", "eth0"]);
      await must(["ip", "-n", ns(h), "link", "set", "eth0", "up"]);
    }
    mkdirSync(join(sb.dir, "keys"), { mode: 0o700 });
    for (const h of ["a", "b"]) {
      pub[h] = (await writeWgKey(key(h))).pub;
    }
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const fa = file("a");
    daemon = execa(
      "node",
      [
        BOLT_BIN,
        "watch",
        "-f",
        fa,
        "--netns",
        ns("a"),
        "--state-dir",
        join(sb.stateDir, "a"),
        "--metrics-listen",
        `127.0.0.1:${port}`,
        "--resync",
        "2s",
        "--debounce",
        "200ms",
        "--json",
      ],
      { reject: false },
    );
    await waitFor("the daemon's first pass", async () => (await httpGet(`${base}/healthz`)).status === 200, 20_000);
    expect((await onB(["apply", "-f", file("b")])).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    if (daemon?.pid) {
      try {
        process.kill(daemon.pid, "SIGTERM");
      } catch {
        /* gone */
      }
      await Promise.race([daemon, sleep(5000)]);
    }
    await sb.cleanup();
  }, 60_000);

  it("a wireguard-go killed by hand is started again by the daemon, and the tunnel carries traffic", async () => {
    expect(await pingUntil(ns("b"), TUN.a)).toBe(true);
    const [pid] = await wgPidsIn(ns("a"), "gw0");
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, "SIGKILL"); // ours: it lives in our namespace, started by our daemon
    const again = await waitFor(
      "a new wireguard-go in A",
      async () => {
        const p = await wgPidsIn(ns("a"), "gw0");
        return p.length === 1 && p[0] !== pid && p[0];
      },
      20_000,
    );
    expect(again).toBeGreaterThan(0);
    // The daemon's pass starts wireguard-go, then sets the key and peers (wg-quick's order too).
    await waitFor("A's key on the new device", async () => (await run(wgIn(ns("a"), ["show", "gw0", "public-key"]))).stdout.trim() === pub.a, 10_000);
    // The new device has no session yet: A, which knows B's endpoint, starts one.
    expect(await pingUntil(ns("a"), TUN.b, 10)).toBe(true);
    expect(await pingUntil(ns("b"), TUN.a, 5)).toBe(true);
  });

  it("B moves to another port: A's daemon keeps the roamed endpoint through its resyncs (no reset, traffic flows)", async () => {
    // B starts a new session from port 51823 (a NAT rebinding looks the same to A).
    expect((await onB(["destroy"])).code).toBe(0);
    await sleep(1100);
    expect((await onB(["apply", "-f", file("b", 51823)])).code).toBe(0);
    const endpointOnA = async () => (await must(wgIn(ns("a"), ["show", "gw0", "endpoints"]))).split("\t")[1]?.trim();
    await waitFor("A to learn B's new port", async () => (await pingUntil(ns("b"), TUN.a, 1)) && (await endpointOnA()) === `${UL.b}:51823`, 20_000);
    // Several resyncs (every 2 s) later, still there, and A reaches B.
    await sleep(5000);
    expect(await endpointOnA()).toBe(`${UL.b}:51823`);
    expect((await run(["ip", "netns", "exec", ns("a"), "ping", "-n", "-c", "1", "-W", "2", TUN.b])).code).toBe(0);
    // The resyncs found nothing to change: the roam is not drift.
    const h = JSON.parse((await httpGet(`${base}/healthz`)).body);
    expect(h.status).toBe("ok");
    expect(h.last_pass.outcome).toBe("noop");
  });
});
