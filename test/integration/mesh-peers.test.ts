// Peer changes without dropping live sessions, and the wireguard-go lifecycle (issue 4).
// Editing one peer's allowed IPs, removing and re-adding another: only that peer is touched
// (`wg set IF peer …`), so the other peer's session survives — same latest-handshake, counters
// keep counting, traffic flows without a new handshake. A wireguard-go process found dead
// (its tun device dies with it) is started again by the next apply.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, ipJson, plannedOf, requireBuild, run } from "./harness.js";
import type { Json } from "./harness.js";
import { HOSTS, MESH6, MESH_IP, MeshLab, pingUntil, sleep } from "./mesh-topology.js";

const ROUTE = "10.66.0.0/24";

describe.skipIf(!!SKIP_REASON)("mesh peers: minimal changes keep sessions; dead wireguard-go restarted", () => {
  const lab = new MeshLab(HOSTS, false);
  beforeAll(async () => {
    requireBuild();
    await lab.build();
    for (const h of HOSTS) await lab.apply(h, lab.meshFile(h));
  });
  afterAll(() => lab.cleanup());

  const gwa = () => lab.ifname("a");
  /** Both of A's sessions up, then one second so a new handshake would show as a new timestamp. */
  const sessionsUp = async () => {
    expect(await pingUntil(lab.ns("a"), MESH_IP.b)).toBe(true);
    expect(await pingUntil(lab.ns("a"), MESH_IP.c)).toBe(true);
    await sleep(1100);
    const hs = await lab.handshakes("a");
    expect(hs.get(lab.pub.b)).toBeGreaterThan(0);
    expect(hs.get(lab.pub.c)).toBeGreaterThan(0);
    return hs;
  };

  it("editing B's allowed IPs on A changes only B's peer and its route; C's session is untouched", async () => {
    const hs = await sessionsUp();
    const cBefore = await lab.peerStatus("a", "c");
    const file = lab.meshFile("a", { world: { a: { acceptRoutes: true } }, peerRoutes: { b: [ROUTE] }, name: "a-routes.toml" });
    const plan = await lab.bolt("a", ["plan", "--json", "-f", file]);
    expect(plannedOf(plan.stdout)).toEqual([`create route:main/${ROUTE}`, `update wg-peer:${gwa()}/${lab.pub.b}`]);
    await lab.apply("a", file);

    const allowed = new Map(
      (await lab.wg("a", "allowed-ips"))
        .trim()
        .split("\n")
        .map((l) => l.split("\t") as [string, string]),
    );
    // Each peer's IPv4 and (derived) IPv6 mesh address, and B's route.
    expect(allowed.get(lab.pub.b)!.split(" ").sort()).toEqual([`${MESH_IP.b}/32`, `${MESH6.b}/128`, ROUTE].sort());
    expect(allowed.get(lab.pub.c)!.split(" ").sort()).toEqual([`${MESH_IP.c}/32`, `${MESH6.c}/128`].sort());
    const routes = ((await ipJson(lab.ns("a"), ["-4", "route", "show", "proto", "176"])) as Json[]).map((r) => `${r.dst} ${r.dev}`);
    expect(routes).toContain(`${ROUTE} ${gwa()}`);

    const after = await lab.handshakes("a");
    expect(after.get(lab.pub.c), "C's handshake timestamp").toBe(hs.get(lab.pub.c));
    expect(after.get(lab.pub.b), "B's handshake timestamp (allowed-IPs edits keep the session too)").toBe(hs.get(lab.pub.b));
    // The session keeps carrying traffic: counters continue, no new handshake is needed.
    expect(await pingUntil(lab.ns("a"), MESH_IP.c)).toBe(true);
    const cAfter = await lab.peerStatus("a", "c");
    expect(cAfter.tx_bytes).toBeGreaterThan(cBefore.tx_bytes);
    expect(cAfter.rx_bytes).toBeGreaterThan(cBefore.rx_bytes);
    expect((await lab.handshakes("a")).get(lab.pub.c)).toBe(hs.get(lab.pub.c));

    // And back: the route follows the allowed IPs away.
    await lab.apply("a", lab.meshFile("a"));
    const back = ((await ipJson(lab.ns("a"), ["-4", "route", "show", "proto", "176"])) as Json[]).map((r) => r.dst);
    expect(back).not.toContain(ROUTE);
    expect((await lab.handshakes("a")).get(lab.pub.c)).toBe(hs.get(lab.pub.c));
  });

  it("removing C from A and adding it back leaves B's session alone", async () => {
    const hs = await sessionsUp();
    const file = lab.meshFile("a", { peers: ["a", "b"], name: "a-no-c.toml" });
    const plan = await lab.bolt("a", ["plan", "--json", "-f", file]);
    expect(plannedOf(plan.stdout)).toEqual(
      [`delete route:main/${MESH_IP.c}/32`, `delete route:main/${MESH6.c}/128`, `delete wg-peer:${gwa()}/${lab.pub.c}`, "update hosts:magic_dns"].sort(),
    );
    await lab.apply("a", file);
    expect((await lab.handshakes("a")).has(lab.pub.c)).toBe(false);
    expect(await pingUntil(lab.ns("a"), MESH_IP.c, 1)).toBe(false);
    expect((await lab.handshakes("a")).get(lab.pub.b)).toBe(hs.get(lab.pub.b));

    await lab.apply("a", lab.meshFile("a"));
    expect(await pingUntil(lab.ns("a"), MESH_IP.c)).toBe(true);
    const after = await lab.handshakes("a");
    expect(after.get(lab.pub.b)).toBe(hs.get(lab.pub.b));
    expect(after.get(lab.pub.c), "C is a new session").toBeGreaterThan(hs.get(lab.pub.c)!);
  });

  it("a wireguard-go found dead is started again by the next apply, and traffic flows", async () => {
    const dev = lab.ifname("b");
    const [pid] = await lab.wgPids("b");
    expect(pid).toBeGreaterThan(0);
    // We started it (through bolt, in our namespace: wgPids counts that namespace's only).
    process.kill(pid!, "SIGKILL");
    for (let i = 0; i < 50 && (await lab.wgPids("b")).length; i++) await sleep(100);
    expect(await lab.wgPids("b")).toEqual([]);
    // The tun device died with its process.
    expect(((await ipJson(lab.ns("b"), ["link", "show"])) as Json[]).map((l) => l.ifname)).not.toContain(dev);
    expect(await pingUntil(lab.ns("b"), MESH_IP.a, 1)).toBe(false);
    const p = await lab.bolt("b", ["plan", "-f", lab.meshFile("b"), "--detailed-exitcode"]);
    expect(p.code).toBe(2);
    const st = await lab.status("b");
    expect(st.interfaces).toEqual([]);

    await lab.apply("b", lab.meshFile("b"));
    const pids = await lab.wgPids("b");
    expect(pids).toHaveLength(1);
    expect(pids[0]).not.toBe(pid);
    expect(await pingUntil(lab.ns("b"), MESH_IP.a)).toBe(true);
    expect(await pingUntil(lab.ns("b"), MESH_IP.c)).toBe(true);
    expect((await lab.peerStatus("b", "a")).rx_bytes).toBeGreaterThan(0);
  });

  it("a wireguard-go whose control socket was deleted is brought back", async () => {
    const dev = lab.ifname("c");
    const [pid] = await lab.wgPids("c");
    // wireguard-go watches its socket (inotify) and shuts down when it is deleted; until it has,
    // `wg` cannot reach the device and bolt replaces it. Either way the next apply brings it back.
    await run(["rm", "-f", lab.socket("c")]);
    const plan = await lab.bolt("c", ["plan", "--json", "-f", lab.meshFile("c")]);
    expect(plannedOf(plan.stdout).filter((l) => l.endsWith(`wireguard:${dev}`))).toHaveLength(1);
    expect(plannedOf(plan.stdout).find((l) => l.endsWith(`wireguard:${dev}`))).toMatch(/^(create|replace) /);
    await lab.apply("c", lab.meshFile("c"));
    const pids = await lab.wgPids("c");
    expect(pids).toHaveLength(1);
    expect(pids[0]).not.toBe(pid);
    expect(await pingUntil(lab.ns("c"), MESH_IP.a)).toBe(true);
  });

  it("a hung wireguard-go (stopped) does not hang plan or status: its device reads as not running", async () => {
    const dev = lab.ifname("c");
    const [pid] = await lab.wgPids("c");
    // Ours (started through bolt in our namespace); continued right after, whatever happens.
    process.kill(pid!, "SIGSTOP");
    try {
      const t0 = Date.now();
      const plan = await lab.bolt("c", ["plan", "--json", "-f", lab.meshFile("c")]);
      expect(Date.now() - t0, "plan returns although `wg` gets no answer").toBeLessThan(30_000);
      expect(plannedOf(plan.stdout)).toContain(`replace wireguard:${dev}`);
      const st = await lab.status("c");
      expect(st.interfaces.find((i: Json) => i.interface === dev)?.running).toBe(false);
    } finally {
      process.kill(pid!, "SIGCONT");
    }
    const p = await lab.bolt("c", ["plan", "-f", lab.meshFile("c"), "--detailed-exitcode"]);
    expect(p.code, p.stdout).toBe(0);
  });

  it("destroy stops every wireguard-go; no key material anywhere", async () => {
    for (const h of HOSTS) expect((await lab.bolt(h, ["destroy"])).code).toBe(0);
    for (const h of HOSTS) expect(await lab.wgPids(h)).toEqual([]);
    await lab.expectNoSecrets();
  });
});
