// Hosts joining a mesh through its etcd store (issue 10): three namespaced hosts, each with
// only a bundle from `bolt mesh enroll` and no [[peers]]. Each `bolt apply` publishes the
// host's request (key, endpoint) and configures every approved node it can see; after a round
// every host pings every other through gw0. A revoked node is dropped by the others' next apply;
// a bundle for another mesh and an unreachable store are one-line errors with nothing applied.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, bolt, requireBuild, snapshot } from "./harness.js";
import { sleep, waitFor } from "./watch-helpers.js";
import type { Json } from "./harness.js";
import { EtcdCluster } from "./etcd-cluster.js";
import { HOSTS, MeshLab, UNDERLAY, hostname, pingUntil } from "./mesh-topology.js";
import type { HostId } from "./mesh-topology.js";
import { MeshDaemons } from "./mesh-daemons.js";
import { MeshStore } from "../../reconcilers/wireguard/store.js";

describe.skipIf(!!SKIP_REASON)("hosts join a mesh through its etcd store", () => {
  const etcd = new EtcdCluster();
  const lab = new MeshLab(HOSTS, false);
  const ip: Partial<Record<HostId, string>> = {};
  const admin = (args: string[]) => bolt(["mesh", ...args, "--control-server", etcd.url, "--mesh", "lab"]);
  const file = (h: HostId, o: { bundle?: string; store?: string } = {}) => lab.storeFile(h, o.store ?? etcd.url, { bundle: o.bundle });

  beforeAll(async () => {
    requireBuild();
    await etcd.start(3);
    await lab.build();
    expect((await admin(["init"])).code).toBe(0);
    Object.assign(ip, await lab.enrollStore(admin, () => ["--auto-approve"]));
  }, 90_000);
  afterAll(async () => {
    await lab.cleanup();
    await etcd.stop();
  }, 60_000);

  it("each host applies its bundle: after one round every host has the others as peers and pings them through gw0", async () => {
    // Round 1 publishes every host's key; round 2 sees them all.
    for (const round of [1, 2])
      for (const h of HOSTS) {
        const r = await lab.bolt(h, ["apply", "-f", file(h)]);
        expect(r.code, `round ${round}, ${h}: ${r.stdout}${r.stderr}`).toBe(0);
      }
    // A host's request and status land in one transaction (one revision): the others' watches
    // see one change and make one pass for a joining host.
    for (const h of HOSTS) {
      const rev = async (k: string) => {
        const r = await etcd.etcdctl(["get", `/bolt/v1/meshes/lab/${k}/${hostname(h)}`, "-w", "json"]);
        return (JSON.parse(r.stdout) as { kvs?: { create_revision: number }[] }).kvs?.[0]?.create_revision;
      };
      const [request, status] = [await rev("requests"), await rev("status")];
      expect(request, `${h}'s request`).toBeGreaterThan(0);
      expect(status, `${h}'s status`).toBe(request);
    }
    for (const h of HOSTS) {
      // The address is the one the store allocated, not one derived from the key.
      const st = await lab.status(h);
      expect((st.interfaces as Json[])[0].peers.length, `${h}'s peers`).toBe(2);
      expect((await lab.bolt(h, ["plan", "-f", file(h), "--detailed-exitcode"])).code, `${h} re-plan`).toBe(0);
    }
    // mesh status: the snapshot b applied last, read from its state dir; the one-shot applies'
    // leases (TTL 30 s) are still alive, so both other hosts are online at that revision.
    const list = JSON.parse((await admin(["list", "--json"])).stdout) as Json;
    const st = await lab.status("b");
    expect(st.store).toMatchObject({ mesh: "lab", mesh_id: list.mesh_id, self: hostname("b"), online: [hostname("a"), hostname("c")], offline: [] });
    expect(BigInt((st.store as Json).revision)).toBeLessThanOrEqual(BigInt(list.revision));
    expect((await lab.bolt("b", ["mesh", "status"])).stdout).toMatch(
      new RegExp(
        `^store: mesh "lab" revision ${(st.store as Json).revision}, snapshot saved \\d+ s ago; online ${hostname("a")}, ${hostname("c")}; offline none$`,
        "m",
      ),
    );
    for (const h of HOSTS)
      expect((list.nodes as Json[]).find((n) => n.name === hostname(h))).toMatchObject({ online: true, endpoints: [`${UNDERLAY[h]}:41641`] });
    for (const from of HOSTS) for (const to of HOSTS.filter((x) => x !== from)) expect(await pingUntil(lab.ns(from), ip[to]!), `${from} → ${to}`).toBe(true);
  }, 120_000);

  it("mesh list shows a pending node's requested key by its fingerprint, so approve is an informed decision", async () => {
    expect((await admin(["enroll", "pending-d"])).code).toBe(0);
    const row = async () => (await admin(["list"])).stdout.split("\n").find((l) => l.startsWith("pending-d ")) ?? "";
    expect(await row()).toMatch(/pending .* {2}offline {2}key=none \(no request yet\)$/);
    // The node's own write (as its bundle would): its request, with its key.
    const key = randomBytes(32).toString("base64");
    const store = MeshStore.open(etcd.url, "lab");
    try {
      await store.putRequest("pending-d", { public_key: key, hostname: "pending-d", tags: [], routes: [], exit_node: false });
    } finally {
      store.close();
    }
    const node = (JSON.parse((await admin(["list", "--json"])).stdout).nodes as Json[]).find((n) => n.name === "pending-d");
    expect(node).toMatchObject({
      state: "pending",
      online: false,
      requested: { public_key: key, key_fingerprint: key.slice(0, 8) },
      effective: { routes: [] },
    });
    expect(await row()).toMatch(new RegExp(`^pending-d\\s+pending\\s.* {2}offline {2}key=${key.slice(0, 8).replace(/[+/]/g, "\\$&")}$`));
    expect((await admin(["approve", "pending-d"])).code).toBe(0);
    expect((JSON.parse((await admin(["list", "--json"])).stdout).nodes as Json[]).find((n) => n.name === "pending-d")?.public_key).toBe(key);
    expect((await admin(["remove", "pending-d", "--release"])).code).toBe(0);
  }, 30_000);

  it("a revoked node is dropped by the others' next apply (and cannot be reached through the mesh)", async () => {
    expect((await admin(["revoke", hostname("c")])).code).toBe(0);
    for (const h of ["a", "b"] as const) {
      const r = await lab.bolt(h, ["apply", "-f", file(h)]);
      expect(r.code, r.stderr).toBe(0);
      const peers = ((await lab.status(h)).interfaces as Json[])[0].peers as Json[];
      expect(peers.map((p) => p.public_key)).not.toContain(lab.pub.c);
      expect(peers).toHaveLength(1);
    }
    expect(await pingUntil(lab.ns("a"), ip.c!, 2)).toBe(false);
    expect(await pingUntil(lab.ns("a"), ip.b!)).toBe(true);
  }, 60_000);

  it("a bundle for another mesh and an unreachable store: one-line errors, nothing applied", async () => {
    const before = await snapshot(lab.ns("b"));
    const other = join(lab.sb.dir, "other.boltkey");
    const b = JSON.parse((await admin(["list", "--json"])).stdout);
    writeFileSync(
      other,
      JSON.stringify({ v: 1, control_server: etcd.url, mesh: "lab", mesh_id: "00000000-0000-0000-0000-000000000000", node: hostname("b") }),
      { mode: 0o600 },
    );
    const wrong = await lab.bolt("b", ["apply", "-f", file("b", { bundle: other })]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(
      `the bundle is for mesh_id 00000000-0000-0000-0000-000000000000, but ${etcd.url} holds mesh "lab" with mesh_id ${b.mesh_id}`,
    );
    // Unreachable at a first start (no snapshot of the mesh in this state dir yet): nothing applied.
    const fresh = mkdtempSync(join(tmpdir(), "bolt-it-fresh-state-"));
    const down = await bolt(["apply", "-f", file("b", { store: "etcd://127.0.0.1:1" }), "--netns", lab.ns("b"), "--state-dir", fresh]);
    rmSync(fresh, { recursive: true, force: true });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/control server etcd:\/\/127\.0\.0\.1:1: .* unreachable/);
    chmodSync(join(lab.sb.dir, "b.boltkey"), 0o644);
    const loose = await lab.bolt("b", ["apply", "-f", file("b")]);
    expect(loose.stderr).toContain("the mesh bundle is readable by group or others");
    chmodSync(join(lab.sb.dir, "b.boltkey"), 0o600);
    expect(await snapshot(lab.ns("b"))).toEqual(before);
  }, 60_000);
  it("bolt watch: a node admitted later is configured by the pass its etcd watch event starts; with the whole store down the peers stay (identity, not liveness)", async () => {
    const daemons = new MeshDaemons(lab);
    try {
      await daemons.start("a", file("a"));
      const health = () => daemons.health("a");
      // c comes back under its name: removed (address released), enrolled again, applied once.
      expect((await admin(["remove", hostname("c"), "--release"])).code).toBe(0);
      const r = await admin(["enroll", hostname("c"), "--auto-approve"]);
      writeFileSync(join(lab.sb.dir, "c.boltkey"), r.stdout, { mode: 0o600 });
      ip.c = JSON.parse(r.stdout).mesh_ip4;
      expect((await lab.bolt("c", ["apply", "-f", file("c")])).code).toBe(0);
      await waitFor(
        "a's daemon to add c",
        async () => (((await lab.status("a")).interfaces as Json[])[0].peers as Json[]).some((p) => p.public_key === lab.pub.c),
        20_000,
      );
      // The store's watch event started that pass, not only the resync timer.
      expect(daemons.log("a")).toMatch(/"trigger":\[[^\]]*"store"[^\]]*\],"outcome":"applied"/);
      expect((await lab.bolt("c", ["apply", "-f", file("c")])).code).toBe(0); // c learns a and b (its requests are in)
      expect(await pingUntil(lab.ns("a"), ip.c!)).toBe(true);
      // Every etcd member gone: the passes go on from the last snapshot, say it is stale, and
      // the kernel keeps every peer.
      await etcd.stop();
      await waitFor("a pass on the stale snapshot", async () => /using the snapshot of revision \d+ saved .* \(stale\)/.test(daemons.log("a")), 30_000);
      await sleep(3000);
      const h = await health();
      expect(h.last_pass.outcome, daemons.log("a").slice(-3000)).toBe("noop");
      expect(h.store).toMatchObject({ state: "stale" });
      const peers = ((await lab.status("a")).interfaces as Json[])[0].peers as Json[];
      expect(peers.map((p) => p.public_key).sort()).toEqual([lab.pub.b, lab.pub.c].sort());
      expect(await pingUntil(lab.ns("a"), ip.b!)).toBe(true);
      expect(await pingUntil(lab.ns("a"), ip.c!)).toBe(true);
    } finally {
      await daemons.stopAll();
    }
  }, 120_000);

  it("after the store is gone, apply uses the last snapshot (stale) and changes nothing; a wiped store re-created is refused by the brake", async () => {
    const before = await snapshot(lab.ns("b"));
    const r = await lab.bolt("b", ["apply", "-f", file("b")]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: mesh store: control server .* unreachable .*; using the snapshot of revision \d+ saved .* \(stale\)/);
    expect(await snapshot(lab.ns("b"))).toEqual(before);
    // A new, empty cluster with a mesh of the same name: another mesh_id. b refuses it.
    const fresh = new EtcdCluster();
    await fresh.start(1);
    try {
      expect((await bolt(["mesh", "init", "--control-server", fresh.url, "--mesh", "lab"])).code).toBe(0);
      const refused = await lab.bolt("b", ["apply", "-f", file("b", { store: fresh.url })]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("brake: the store now holds mesh_id");
      expect(await snapshot(lab.ns("b"))).toEqual(before);
      expect(await pingUntil(lab.ns("b"), ip.a!)).toBe(true);
    } finally {
      await fresh.stop();
    }
  }, 90_000);
});
