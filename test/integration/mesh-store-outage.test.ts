// The store going away must never cost the data plane (MULTIHOST.md §2.11, tests 4 and 6).
// Three namespaced hosts, each with its own `bolt watch` on a real 3-member etcd:
//  - every member killed with -9 for a minute: not one ping lost between the hosts, not one
//    change made, every daemon says "stale", and a daemon restarted during the outage starts
//    from its saved snapshot and changes nothing either;
//  - one host cut off from etcd (a TCP proxy in front of the members, closed): a node removed
//    meanwhile, and the store compacted past that removal, reaches the host once it is back —
//    by its watch (cancelled as compacted, so made again), not only by a resync timer.
import { createServer, connect } from "node:net";
import type { Server, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { SKIP_REASON, bolt, requireBuild } from "./harness.js";
import type { Json } from "./harness.js";
import { freePort, sleep, waitFor } from "./watch-helpers.js";
import { EtcdCluster } from "./etcd-cluster.js";
import { HOSTS, MeshLab, hostname, pingUntil } from "./mesh-topology.js";
import type { HostId } from "./mesh-topology.js";
import { MeshDaemons } from "./mesh-daemons.js";

const OUTAGE_S = 60;

/** A TCP proxy to one etcd member that can be cut (every connection closed, new ones refused) and healed. */
class CutProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private cut = false;
  port = 0;
  constructor(private readonly upstream: number) {}
  async start(): Promise<void> {
    this.port = await freePort();
    this.server = createServer((down) => {
      if (this.cut) return void down.destroy();
      const up = connect(this.upstream, "127.0.0.1");
      for (const s of [down, up]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {});
      }
      down.pipe(up).pipe(down);
      down.on("close", () => up.destroy());
      up.on("close", () => down.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(this.port, "127.0.0.1", r));
  }
  partition(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }
  heal(): void {
    this.cut = false;
  }
  close(): void {
    this.partition();
    this.server?.close();
  }
}

/** Pings ip from ns every 0.2 s for `seconds`: how many were sent and how many answered. */
async function pingFor(ns: string, ip: string, seconds: number): Promise<{ sent: number; received: number }> {
  const r = await execa("ip", ["netns", "exec", ns, "ping", "-n", "-q", "-i", "0.2", "-w", String(seconds), ip], { reject: false });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  if (!m) throw new Error(`ping output not understood: ${r.stdout} ${r.stderr}`);
  return { sent: Number(m[1]), received: Number(m[2]) };
}

describe.skipIf(!!SKIP_REASON)("the mesh store down or out of reach: the data plane stays, changes arrive after", () => {
  const etcd = new EtcdCluster();
  const lab = new MeshLab(HOSTS, false);
  const daemons = new MeshDaemons(lab);
  const proxies: CutProxy[] = [];
  const ip: Partial<Record<HostId, string>> = {};
  const admin = (args: string[]) => bolt(["mesh", ...args, "--control-server", etcd.url, "--mesh", "outage"]);
  // c reaches etcd only through the proxies; a and b directly.
  const file = (h: HostId) =>
    lab.storeFile(h, h === "c" ? `etcd://${proxies.map((p) => `127.0.0.1:${p.port}`).join(",")}` : etcd.url, { name: `${h}-outage.toml` });
  const peersOf = async (h: HostId) => (((await lab.status(h)).interfaces as Json[])[0].peers as Json[]).map((p) => p.public_key as string).sort();

  beforeAll(async () => {
    requireBuild();
    await etcd.start(3);
    for (const port of etcd.clientPorts) {
      const p = new CutProxy(port);
      await p.start();
      proxies.push(p);
    }
    await lab.build();
    expect((await admin(["init", "--status-ttl", "5"])).code).toBe(0);
    Object.assign(ip, await lab.enrollStore(admin, () => ["--auto-approve"]));
  }, 90_000);
  afterAll(async () => {
    await daemons.stopAll();
    for (const p of proxies) p.close();
    await lab.cleanup();
    await etcd.stop();
  }, 60_000);

  it("three daemons make the full mesh from the store", async () => {
    // c watches with a long resync: what it learns after the partition comes from its watch.
    for (const h of HOSTS) await daemons.start(h, file(h), { resync: h === "c" ? "10m" : "1s" });
    for (const h of HOSTS)
      await waitFor(`${h} to have both peers`, async () => (await peersOf(h)).length === 2, 30_000).catch(async (e) => {
        throw new Error(`${(e as Error).message}: ${JSON.stringify((await daemons.health(h)).last_pass)}`);
      });
    for (const h of HOSTS) await daemons.converged(h);
    expect(await pingUntil(lab.ns("a"), ip.b!)).toBe(true);
    expect(await pingUntil(lab.ns("a"), ip.c!)).toBe(true);
    expect(await pingUntil(lab.ns("b"), ip.c!)).toBe(true);
  }, 90_000);

  it(
    `every etcd member killed for ${OUTAGE_S} s: no ping lost, no change made, health says stale; a daemon restarted meanwhile changes nothing`,
    async () => {
      const before = Object.fromEntries(await Promise.all(HOSTS.map(async (h) => [h, await peersOf(h)] as const)));
      const t0 = Date.now();
      const pings = [pingFor(lab.ns("a"), ip.b!, OUTAGE_S + 10), pingFor(lab.ns("a"), ip.c!, OUTAGE_S + 10), pingFor(lab.ns("c"), ip.b!, OUTAGE_S + 10)];
      await sleep(1000);
      await etcd.kill();
      for (const h of HOSTS) await waitFor(`${h} to say stale`, async () => ((await daemons.health(h)).store as Json | undefined)?.state === "stale", 30_000);
      // b's daemon restarts in the middle of the outage: its first pass runs on the saved snapshot.
      await daemons.stop("b");
      await daemons.start("b", file("b"));
      expect((await daemons.health("b")).store).toMatchObject({ state: "stale" });
      await sleep(Math.max(0, OUTAGE_S * 1000 - (Date.now() - t0)));
      await etcd.restart();
      for (const h of HOSTS)
        await waitFor(`${h} to reconnect`, async () => ((await daemons.health(h)).store as Json | undefined)?.state === "connected", 30_000);
      const results = await Promise.all(pings);
      for (const r of results) {
        expect(r.sent).toBeGreaterThan(OUTAGE_S * 4);
        expect(r.received, JSON.stringify(results)).toBe(r.sent);
      }
      // Not one change in any pass since the members died (the restarted b's passes included).
      for (const h of HOSTS) {
        const changed = daemons.passes(h).filter((p) => (p.time as number) > t0 && p.changes !== 0);
        expect(changed, `${h}'s passes that changed something`).toEqual([]);
        expect(await peersOf(h)).toEqual(before[h]);
      }
    },
    (OUTAGE_S + 90) * 1000,
  );

  it("c cut off from etcd: b removed and the store compacted meanwhile — c drops b once it is back, by its watch", async () => {
    for (const p of proxies) p.partition();
    await waitFor("c to say stale", async () => ((await daemons.health("c")).store as Json | undefined)?.state === "stale", 30_000);
    await daemons.stop("b");
    expect((await admin(["remove", hostname("b")])).code).toBe(0);
    await waitFor("a to drop b", async () => !(await peersOf("a")).includes(lab.pub.b), 20_000);
    // More revisions after the removal, then compaction up to now: c's watch cannot resume.
    expect((await etcd.etcdctl(["put", "bolt-test-filler", "x"])).code).toBe(0);
    const rev = await etcd.revision();
    const compacted = await etcd.etcdctl(["compaction", rev]);
    expect(compacted.code, compacted.stderr).toBe(0);
    expect(await peersOf("c")).toContain(lab.pub.b); // identity, not liveness: c keeps b meanwhile
    const healed = Date.now();
    for (const p of proxies) p.heal();
    await waitFor("c to drop b", async () => !(await peersOf("c")).includes(lab.pub.b), 30_000);
    console.info(`after the partition: c dropped the removed node ${Date.now() - healed} ms after it could reach etcd again (resync 10 min)`);
    expect(((await daemons.health("c")).store as Json).state).toBe("connected");
    expect(await peersOf("c")).toEqual([lab.pub.a]);
    expect(await pingUntil(lab.ns("c"), ip.a!)).toBe(true);
    expect(daemons.passes("c").some((p) => (p.time as number) > healed && (p.trigger as string[]).includes("store") && p.outcome === "applied")).toBe(true);
  }, 120_000);
});
