// The admin side of the mesh on etcd (issue 10, first part): `bolt mesh init | enroll | approve
// | revoke | expire | remove | list` against a real 3-member etcd cluster on loopback. Address
// allocation is a create-only transaction: 20 enrollments at once never share an address.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, bolt, requireBuild } from "./harness.js";
import type { Json } from "./harness.js";
import { EtcdCluster } from "./etcd-cluster.js";

describe.skipIf(!!SKIP_REASON)("mesh admin on an etcd store", () => {
  const etcd = new EtcdCluster();
  const mesh = (args: string[], name = "lab") => bolt(["mesh", ...args, "--control-server", etcd.url, "--mesh", name]);

  beforeAll(async () => {
    requireBuild();
    await etcd.start(3);
  }, 60_000);
  afterAll(() => etcd.stop());

  it("init creates the mesh once; a second init is refused and changes nothing", async () => {
    const r = await mesh(["init", "--cidr", "100.64.0.0/24", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const meta = JSON.parse(r.stdout) as Json;
    expect(meta).toMatchObject({ v: 1, cidr4: "100.64.0.0/24" });
    const again = await mesh(["init"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`mesh "lab" already exists (mesh_id ${meta.mesh_id}`);
    expect(JSON.parse((await mesh(["list", "--json"])).stdout).mesh_id).toBe(meta.mesh_id);
  });

  it("enroll writes the bundle and the identity; approve, revoke, expire and remove change it; list shows it", async () => {
    const e = await mesh(["enroll", "web-1", "--tags", "web,tag:prod", "--routes", "192.168.1.0/24", "--exit-node"]);
    expect(e.code, e.stderr).toBe(0);
    const bundle = JSON.parse(e.stdout) as Json;
    expect(bundle).toMatchObject({ v: 1, control_server: etcd.url, mesh: "lab", node: "web-1" });
    expect(e.stderr).toContain("pending; `bolt mesh approve web-1` admits it");
    const node = () => mesh(["list", "--json"]).then((r) => (JSON.parse(r.stdout).nodes as Json[]).find((n) => n.name === "web-1"));
    expect(await node()).toMatchObject({
      state: "pending",
      mesh_ip4: bundle.mesh_ip4,
      tags: ["web", "prod"],
      routes_allowed: ["192.168.1.0/24"],
      exit_node_allowed: true,
    });
    expect((await mesh(["approve", "web-1"])).code).toBe(0);
    expect(await node()).toMatchObject({ state: "approved", key_policy: "node" });
    expect((await mesh(["list"])).stdout).toMatch(/^web-1\s+approved\s+100\.64\.0\.\d+\s+tag:web,tag:prod {2}routes 192\.168\.1\.0\/24 {2}exit-node/m);
    expect((await mesh(["expire", "web-1", "--expires", "30d"])).code).toBe(0);
    expect(Date.parse((await node()).expires_at)).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect((await mesh(["revoke", "web-1"])).code).toBe(0);
    expect((await node()).state).toBe("revoked");
    // A revoked node cannot be approved again; its address stays reserved until --release.
    const re = await mesh(["approve", "web-1"]);
    expect(re.code).toBe(1);
    expect(re.stderr).toContain('node "web-1" is revoked');
    expect((await mesh(["remove", "web-1"])).code).toBe(0);
    expect((await etcd.etcdctl(["get", `/bolt/v1/meshes/lab/ipam/v4/${bundle.mesh_ip4}`, "--print-value-only"])).stdout.trim()).toBe("web-1");
    expect(await node()).toBeUndefined();
  });

  it("20 enrollments at once in a /27: every node gets its own address, none outside the pool", async () => {
    expect((await mesh(["init", "--cidr", "10.200.0.0/27"], "tiny")).code).toBe(0);
    const names = Array.from({ length: 20 }, (_, i) => `n${i}`);
    const rs = await Promise.all(names.map((n) => mesh(["enroll", n, "--auto-approve"], "tiny")));
    expect(rs.filter((r) => r.code !== 0).map((r) => r.stderr)).toEqual([]);
    const addrs = rs.map((r) => JSON.parse(r.stdout).mesh_ip4 as string);
    expect(new Set(addrs).size).toBe(20);
    for (const a of addrs) expect(a).toMatch(/^10\.200\.0\.(\d+)$/);
    for (const a of addrs) expect(Number(a.split(".")[3])).toBeGreaterThan(0);
    for (const a of addrs) expect(Number(a.split(".")[3])).toBeLessThan(31);
    const list = JSON.parse((await mesh(["list", "--json"], "tiny")).stdout);
    expect((list.nodes as Json[]).map((n) => n.mesh_ip4).sort()).toEqual([...addrs].sort());
    // The same name twice is refused, whatever the address.
    const dup = await mesh(["enroll", "n3"], "tiny");
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('node "n3" is already enrolled');
  }, 60_000);

  it("bad input: an unreachable store, an unknown mesh, a bad name, a bad --cidr — one line each, exit 1", async () => {
    const unreachable = await bolt(["mesh", "list", "--control-server", "etcd://127.0.0.1:1", "--mesh", "lab"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr.trim()).toMatch(/^error: control server etcd:\/\/127\.0\.0\.1:1: reading the mesh failed: unreachable/);
    expect(unreachable.stderr.trim().split("\n")).toHaveLength(1);
    const unknown = await mesh(["enroll", "x"], "nosuch");
    expect(unknown.stderr).toContain('there is no mesh "nosuch" (run `bolt mesh init` first)');
    const bad = await mesh(["enroll", "Web_1"]);
    expect(bad.stderr).toContain('node name "Web_1"');
    const cidr = await mesh(["init", "--cidr", "10.0.0.1/24"], "other");
    expect(cidr.stderr).toContain('--cidr "10.0.0.1/24"');
    const noStore = await bolt(["mesh", "list"], { env: { BOLT_CONTROL_SERVER: "" } });
    expect(noStore.stderr).toContain("--control-server etcd://");
  });
});
