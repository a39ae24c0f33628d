// The admin side of the mesh on etcd (issue 10, first part): `bolt mesh init | enroll | approve
// | revoke | expire | remove | list` against a real 3-member etcd cluster on loopback. Address
// allocation is a create-only transaction: 20 enrollments at once never share an address.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, bolt, requireBuild } from "./harness.js";
import type { Json } from "./harness.js";
import { EtcdCluster } from "./etcd-cluster.js";
import { MeshStore } from "../../reconcilers/wireguard/store.js";

describe.skipIf(!!SKIP_REASON)("mesh admin on an etcd store", () => {
  const etcd = new EtcdCluster();
  const dir = mkdtempSync(join(tmpdir(), "bolt-mesh-admin-"));
  const mesh = (args: string[], name = "lab") => bolt(["mesh", ...args, "--control-server", etcd.url, "--mesh", name]);

  beforeAll(async () => {
    requireBuild();
    await etcd.start(3);
  }, 60_000);
  afterAll(async () => {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  });

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

  it("policy set: checked against the mesh's nodes and its own tests first; a failing test writes nothing; get returns the text", async () => {
    expect((await mesh(["init"], "pol")).code).toBe(0);
    for (const [n, t] of [
      ["web", "web"],
      ["db", "db"],
    ])
      expect((await mesh(["enroll", n!, "--tags", t!, "--auto-approve"], "pol")).code).toBe(0);
    const good = `// web may reach the database, nothing else may
{
  "acls": [{ "action": "accept", "src": ["tag:web"], "dst": ["tag:db:5432"] }],
  "tests": [{ "src": "web", "accept": ["db:5432"], "deny": ["db:22"] }],
}
`;
    const goodFile = join(dir, "good.hujson");
    writeFileSync(goodFile, good);
    const set = await mesh(["policy", "set", "-f", goodFile], "pol");
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain("Policy set: 1 rule(s), 1 test(s) passing against 2 node(s).");
    expect((await mesh(["policy", "get"], "pol")).stdout).toBe(good.trimEnd()); // (execa drops the last newline)
    // A test that fails against the mesh: one error at its place in the file, nothing written.
    const bad = good.replace('"deny": ["db:22"]', '"deny": ["db:5432"]');
    const badFile = join(dir, "bad.hujson");
    writeFileSync(badFile, bad);
    const refused = await mesh(["policy", "set", "-f", badFile], "pol");
    expect(refused.code).toBe(1);
    const line = bad.split("\n").findIndex((l) => l.includes('"tests"')) + 1;
    expect(refused.stderr).toContain(`${badFile}:${line}:13: error: test: web → db:5432 (tcp) is accepted, the test expects deny`);
    expect((await mesh(["policy", "get"], "pol")).stdout).toBe(good.trimEnd()); // (execa drops the last newline)
    // A name the mesh does not have is an error at its position too.
    const unknownFile = join(dir, "unknown.hujson");
    writeFileSync(unknownFile, good.replace('"tag:db:5432"', '"tag:cache:6379"'));
    const unknown = await mesh(["policy", "set", "-f", unknownFile], "pol");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('error: ACL names unknown tag "tag:cache"');
  });

  it("two admins racing: the policy write and the approval are compare-and-swap — the second writer is refused, nothing overwritten", async () => {
    expect((await mesh(["init"], "race")).code).toBe(0);
    const store = MeshStore.open(etcd.url, "race");
    try {
      // Both read the policy at the same revision; the first write wins, the second is refused.
      const seen = (await store.policy()).modRevision;
      await store.setPolicy('{ "acls": [ { "action": "accept", "src": ["*"], "dst": ["*:22"] } ] }', seen);
      await expect(store.setPolicy('{ "acls": [] }', seen)).rejects.toThrow(/the mesh's policy changed while this one was checked .* nothing was written/);
      expect((await store.policy()).text).toContain('"*:22"');
      // approve pins the key the admin reviewed: a request rewritten in between (a new key) refuses it.
      expect((await mesh(["enroll", "n1"], "race")).code).toBe(0);
      await store.putRequest("n1", { public_key: `${"A".repeat(43)}=`, hostname: "n1", tags: [], routes: [], exit_node: false });
      const reviewed = (await store.snapshot()).requests.n1!;
      const rev = (await store.request("n1")).modRevision;
      await store.putRequest("n1", { public_key: `${"B".repeat(43)}=`, hostname: "n1", tags: [], routes: [], exit_node: false });
      await expect(store.approveSeen("n1", reviewed.public_key, rev)).rejects.toThrow(
        /its request changed while it was being approved \(a new key\?\); nothing was approved/,
      );
      const n1 = (await store.snapshot()).nodes.find((n) => n.name === "n1")!;
      expect(n1).toMatchObject({ state: "pending", public_key: null });
      // Reviewed again, at the request's current revision: approved with that key.
      const now = (await store.request("n1")).modRevision;
      expect(await store.approveSeen("n1", `${"B".repeat(43)}=`, now)).toMatchObject({ state: "approved", public_key: `${"B".repeat(43)}=` });
    } finally {
      store.close();
    }
  });

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
