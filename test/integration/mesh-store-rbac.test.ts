// The mesh store in RBAC mode (MULTIHOST.md §2.6): a 3-member etcd with --client-cert-auth
// and auth enabled; the admin connects with --ca/--cert/--key, `mesh init` creates the mesh's
// admin role, `enroll --ca-key --out` gives each node an etcd user, a role that may write only
// its own request and status, and a client certificate in a 0600 bundle. As n1 (an etcd3
// client of the test's own with n1's bundle) every other write is refused; revoke deletes
// the user, so the node's next request is refused. A host joins with its TLS bundle through
// `bolt apply`; an expired certificate, one from another CA, or another node's are one-line
// errors naming the bundle.
import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, bolt, ipJson, requireBuild } from "./harness.js";
import type { Json } from "./harness.js";
import { EtcdCluster } from "./etcd-cluster.js";
import { Pki } from "./etcd-pki.js";
import type { Pem } from "./etcd-pki.js";
import { MeshLab, UNDERLAY, hostname } from "./mesh-topology.js";

const P = "/bolt/v1/meshes/lab/";

describe.skipIf(!!SKIP_REASON)("mesh store with TLS client certificates and RBAC", () => {
  const etcd = new EtcdCluster({ tls: true });
  const dir = mkdtempSync(join(tmpdir(), "bolt-mesh-rbac-"));
  const clients: Etcd3[] = [];
  let admin: Pem;
  const store = () => ["--control-server", etcd.url, "--mesh", "lab"];
  const asRoot = (args: string[]) => bolt(["mesh", ...args, ...store(), ...etcd.tlsFlags(etcd.root!)]);
  const asAdmin = (args: string[]) => bolt(["mesh", ...args, ...store(), ...etcd.tlsFlags(admin)]);
  const bundleFile = (name: string) => join(dir, `${name}.boltkey`);
  const enroll = (name: string, extra: string[] = []) => asRoot(["enroll", name, "--ca-key", etcd.pki!.ca.key, "--out", bundleFile(name), ...extra]);
  const bundleOf = (name: string) => JSON.parse(readFileSync(bundleFile(name), "utf8")) as Json;
  /** An etcd3 client that is node `name`: its bundle's CA, certificate and key. */
  const asNode = (b: Json) => {
    const c = new Etcd3({
      hosts: etcd.endpoints,
      credentials: { rootCertificate: Buffer.from(b.ca), certChain: Buffer.from(b.cert), privateKey: Buffer.from(b.key) },
      dialTimeout: 3000,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + 3000) }),
    });
    clients.push(c);
    return c;
  };
  const request = (name: string) => JSON.stringify({ v: 1, hostname: name, tags: [], routes: [], exit_node: false, at: new Date().toISOString() });

  beforeAll(async () => {
    requireBuild();
    await etcd.start(3);
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("init as root creates the mesh and its admin role; a user with only that role reads and changes the mesh but cannot make users", async () => {
    const r = await asRoot(["init", "--cidr", "100.64.0.0/24", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(""); // auth is enabled: no warning
    const role = await etcd.etcdctl(["role", "get", "bolt-mesh-lab-admin"]);
    expect(role.stdout).toContain(`[${P}, /bolt/v1/meshes/lab0) (prefix ${P})`);
    expect(role.stdout).toMatch(/KV Read:\s+\[\/bolt\/v1\/meshes\/lab\/, /);
    expect(role.stdout).toMatch(/KV Write:\s+\[\/bolt\/v1\/meshes\/lab\/, /);
    const again = await asRoot(["init"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('mesh "lab" already exists');
    expect(again.stderr).toContain("(its role bolt-mesh-lab-admin is in place)");

    // bolt-admin: a CN-only user with just the mesh's admin role.
    for (const args of [
      ["user", "add", "bolt-admin", "--no-password"],
      ["user", "grant-role", "bolt-admin", "bolt-mesh-lab-admin"],
    ])
      expect((await etcd.etcdctl(args)).code).toBe(0);
    admin = await etcd.pki!.issue("bolt-admin", "bolt-admin");
    const list = await asAdmin(["list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).mesh_id).toBe(JSON.parse(r.stdout).mesh_id);
    // etcd lets only root manage users: enroll as bolt-admin is refused before anything is written.
    const e = await asAdmin(["enroll", "x1", "--ca-key", etcd.pki!.ca.key, "--out", bundleFile("x1")]);
    expect(e.code).toBe(1);
    expect(e.stderr.trim()).toBe(
      `error: control server ${etcd.url}: checking etcd user "x1" refused: permission denied (etcd user "bolt-admin" lacks the role for this: bolt-mesh-lab-admin for the mesh's keys, root for users and roles)`,
    );
    expect(existsSync(bundleFile("x1"))).toBe(false);
    expect(JSON.parse((await asRoot(["list", "--json"])).stdout).nodes).toEqual([]);
    // Without credentials the store is not reachable at all (it speaks TLS only).
    const plain = await bolt(["mesh", "list", ...store()]);
    expect(plain.code).toBe(1);
    expect(plain.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("enroll --ca-key --out: a 0600 bundle with the CA, a certificate for CN=<node> and its TLS key, no WireGuard key; an etcd user and a role of exactly its keys", async () => {
    for (const n of ["n1", "n2"]) {
      const r = await enroll(n);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(""); // the bundle went to the file only
      expect(r.stderr).not.toContain("PRIVATE KEY");
      expect(r.stderr).toContain(`etcd user "${n}" with a client certificate for 365 days; bundle written to ${bundleFile(n)} (0600)`);
      expect(statSync(bundleFile(n)).mode & 0o777).toBe(0o600);
    }
    const b = bundleOf("n1");
    expect(Object.keys(b).sort()).toEqual(["ca", "cert", "control_server", "key", "mesh", "mesh_id", "mesh_ip4", "node", "v"]);
    expect(b.ca).toBe(readFileSync(etcd.pki!.ca.cert, "utf8"));
    expect(b.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    // No WireGuard key anywhere (44 base64 characters): the node makes its own and only publishes the public one.
    expect(JSON.stringify(b)).not.toMatch(/"[A-Za-z0-9+/]{43}="/);
    const cert = new X509Certificate(b.cert);
    expect(cert.subject).toBe("CN=n1");
    expect(cert.checkIssued(new X509Certificate(b.ca))).toBe(true);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]); // clientAuth only
    expect((await etcd.etcdctl(["user", "get", "n1"])).stdout).toContain("Roles: bolt-node-lab-n1");
    const role = (await etcd.etcdctl(["role", "get", "bolt-node-lab-n1"])).stdout;
    expect(role).toContain(`[${P}, /bolt/v1/meshes/lab0) (prefix ${P})`);
    expect(
      role
        .split("KV Write:")[1]!
        .trim()
        .split("\n")
        .map((l) => l.trim()),
    ).toEqual([`${P}requests/n1`, `${P}status/n1`]);
    // An existing --out file is never overwritten, and nothing is enrolled then.
    const again = await enroll("n3", []);
    expect(again.code, again.stderr).toBe(0);
    const clash = await asRoot(["enroll", "n4", "--ca-key", etcd.pki!.ca.key, "--out", bundleFile("n3")]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain(`--out ${bundleFile("n3")}: exists; a bundle is never overwritten`);
    expect((JSON.parse((await asRoot(["list", "--json"])).stdout).nodes as Json[]).map((n) => n.name)).toEqual(["n1", "n2", "n3"]);
    // With TLS, enroll needs the CA key; a wrong one fails before anything is written.
    const noKey = await asRoot(["enroll", "n5"]);
    expect(noKey.stderr).toContain("give the CA's key with --ca-key FILE");
    const other = await new Pki(dir, "wrong-ca").init();
    const wrong = await asRoot(["enroll", "n5", "--ca-key", other.ca.key, "--out", bundleFile("n5")]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`--ca-key ${other.ca.key}: openssl could not sign the certificate for "n5": CA certificate and CA private key do not match`);
    expect(existsSync(bundleFile("n5"))).toBe(false);
    // On stdout the bundle is printed as before, with a note that it holds a key.
    const out = await asRoot(["enroll", "n6", "--ca-key", etcd.pki!.ca.key]);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout).cert).toContain("BEGIN CERTIFICATE");
    expect(out.stderr).toContain("note: this bundle holds the node's TLS key");
  });

  it("as n1: its own request and its own status under a lease are allowed, reading the mesh is; every other write is refused", async () => {
    const n1 = asNode(bundleOf("n1"));
    await n1.put(`${P}requests/n1`).value(request("n1"));
    const lease = n1.lease(10, { autoKeepAlive: false });
    await lease.put(`${P}status/n1`).value(JSON.stringify({ v: 1, endpoints: [], listen_port: 41641, boot_id: "t", started_at: "t" }));
    expect(await n1.get(`${P}status/n1`).string()).toContain('"boot_id":"t"');
    const keys = await n1.getAll().prefix(P).keys();
    expect(keys).toEqual(expect.arrayContaining([`${P}meta`, `${P}nodes/n1`, `${P}nodes/n2`, `${P}requests/n1`, `${P}status/n1`]));
    const refused: [string, () => Promise<unknown>][] = [
      ["put requests/n2", () => n1.put(`${P}requests/n2`).value(request("n2"))],
      ["put requests/n10 (its key is a key, not a prefix)", () => n1.put(`${P}requests/n10`).value(request("n10"))],
      ["put status/n2", () => n1.put(`${P}status/n2`).value("{}")],
      ["put nodes/n1 (its own identity)", () => n1.put(`${P}nodes/n1`).value("{}")],
      ["put policy", () => n1.put(`${P}policy`).value("{}")],
      [
        "txn create ipam/v4/100.64.0.77",
        () =>
          n1
            .if(`${P}ipam/v4/100.64.0.77`, "Create", "==", 0)
            .then(n1.put(`${P}ipam/v4/100.64.0.77`).value("n1"))
            .commit(),
      ],
      ["delete requests/n2", () => n1.delete().key(`${P}requests/n2`)],
      ["delete nodes/n2", () => n1.delete().key(`${P}nodes/n2`)],
      ["read outside the mesh", () => n1.get("/bolt/v1/meshes/other/meta").string()],
    ];
    for (const [what, f] of refused) await expect(f(), what).rejects.toThrow(/permission denied/);
    await lease.revoke();
  });

  it("revoke deletes the node's etcd user and role: its next read is refused; remove after it is fine (idempotent)", async () => {
    const n2 = asNode(bundleOf("n2"));
    expect(await n2.get(`${P}meta`).string()).toContain("mesh_id");
    const r = await asRoot(["revoke", "n2"]);
    expect(r.code, r.stderr).toBe(0);
    expect((await etcd.etcdctl(["user", "get", "n2"])).code).not.toBe(0);
    expect((await etcd.etcdctl(["role", "get", "bolt-node-lab-n2"])).code).not.toBe(0);
    await expect(n2.get(`${P}meta`).string()).rejects.toThrow(/permission denied/);
    expect((await asRoot(["remove", "n2"])).code).toBe(0);
    // remove takes the user of a node that was never revoked too.
    expect((await asRoot(["remove", "n3", "--release"])).code).toBe(0);
    expect((await etcd.etcdctl(["user", "get", "n3"])).code).not.toBe(0);
    // A name whose etcd user is not this mesh's node (here: root) is never shared or deleted.
    const rootNode = await asRoot(["enroll", "root", "--ca-key", etcd.pki!.ca.key, "--out", bundleFile("root")]);
    expect(rootNode.code).toBe(1);
    expect(rootNode.stderr).toContain('etcd user "root" already exists with role(s) root');
  });

  it("a certificate from another CA cannot connect: refused in one line, as admin (by the store) and directly", async () => {
    const other = await new Pki(dir, "other-ca").init();
    const evil = await other.issue("evil-root", "root");
    const r = await bolt(["mesh", "list", ...store(), "--ca", etcd.pki!.ca.cert, "--cert", evil.cert, "--key", evil.key]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `error: control server ${etcd.url}: reading the mesh refused: the store refused the TLS client certificate (CN=root): it is not signed by a CA the store trusts`,
    );
    const direct = new Etcd3({
      hosts: etcd.endpoints,
      credentials: { rootCertificate: readFileSync(etcd.pki!.ca.cert), certChain: readFileSync(evil.cert), privateKey: readFileSync(evil.key) },
      dialTimeout: 3000,
      defaultCallOptions: () => ({ deadline: new Date(Date.now() + 3000) }),
    });
    clients.push(direct);
    await expect(direct.get(`${P}meta`).string()).rejects.toThrow(/bad certificate|No connection/);
  });

  describe("a host joins with its TLS bundle (bolt apply through the store)", () => {
    const lab = new MeshLab(["a"], false);
    const h = "a" as const;
    const file = (bundle: string) => lab.storeFile(h, etcd.url, { bundle, name: `${h}-${bundle.split("/").pop()}.toml` });
    /** A copy of host-a's bundle with other TLS material, 0600. */
    const variant = (name: string, tls: { ca?: string; cert?: string; key?: string }) => {
      const p = join(dir, `${name}.boltkey`);
      writeFileSync(p, JSON.stringify({ ...bundleOf(hostname(h)), ...tls }), { mode: 0o600 });
      return p;
    };
    beforeAll(async () => {
      await lab.build();
      const r = await enroll(hostname(h), ["--auto-approve"]);
      expect(r.code, r.stderr).toBe(0);
    }, 60_000);
    afterAll(async () => {
      await lab.cleanup();
    }, 60_000);

    it("apply publishes its request and its status as that node, configures gw0 with the store's address; the re-plan is empty", async () => {
      const f = file(bundleFile(hostname(h)));
      await lab.apply(h, f);
      const req = JSON.parse((await etcd.etcdctl(["get", `${P}requests/${hostname(h)}`, "--print-value-only"])).stdout);
      expect(req.public_key).toBe(lab.pub[h]);
      const st = JSON.parse((await etcd.etcdctl(["get", `${P}status/${hostname(h)}`, "--print-value-only"])).stdout);
      expect(st.endpoints).toEqual([`${UNDERLAY[h]}:41641`]);
      const addrs = (await ipJson(lab.ns(h), ["-4", "address", "show", "dev", "gw0"])) as Json[];
      expect(addrs[0].addr_info.map((a: Json) => a.local)).toEqual([bundleOf(hostname(h)).mesh_ip4]);
      expect(lab.outputs.join("")).not.toContain("PRIVATE KEY");
      expect(lab.outputs.join("")).not.toContain("DEP0123");
    });

    it("an expired certificate, one from another CA, another node's: one line naming the bundle, nothing applied", async () => {
      const cases: [string, string, string | RegExp][] = [];
      const expired = await etcd.pki!.issue("expired", hostname(h), { days: -1 });
      const p1 = variant("expired", { cert: readFileSync(expired.cert, "utf8"), key: readFileSync(expired.key, "utf8") });
      cases.push(["expired", p1, new RegExp(`^error: ${p1}: the TLS client certificate \\(CN=host-a\\) expired on \\S+; the store would refuse it$`)]);
      const other = await new Pki(dir, "host-other-ca").init();
      const foreign = await other.issue("foreign", hostname(h));
      const p2 = variant("foreign", { cert: readFileSync(foreign.cert, "utf8"), key: readFileSync(foreign.key, "utf8") });
      cases.push(["another CA", p2, `error: ${p2}: the TLS client certificate (CN=host-a) is not signed by the CA that comes with it (CN=bolt test ca)`]);
      const n1 = bundleOf("n1");
      const p3 = variant("n1-cert", { cert: n1.cert, key: n1.key });
      cases.push(["another node's", p3, `error: ${p3}: the TLS client certificate is for CN=n1, but the bundle is node "host-a"`]);
      const p4 = variant("wrong-key", { key: n1.key });
      cases.push(["a key that is not the certificate's", p4, `error: ${p4}: the TLS client key does not belong to the certificate (CN=host-a)`]);
      for (const [what, p, want] of cases) {
        const r = await lab.bolt(h, ["plan", "-f", file(p)]);
        expect(r.code, what).toBe(1);
        const line = r.stderr.trim();
        expect(line.split("\n"), what).toHaveLength(1);
        if (typeof want === "string") expect(line, what).toBe(want);
        else expect(line, what).toMatch(want);
      }
    });

    it("after revoke its next apply is refused with permission denied (not the stale snapshot); the kernel keeps what it had", async () => {
      expect((await asRoot(["revoke", hostname(h)])).code).toBe(0);
      const r = await lab.bolt(h, ["apply", "-f", file(bundleFile(hostname(h)))]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(`error: control server ${etcd.url}: reading the mesh refused: permission denied (this node's etcd user is gone: revoked?)`);
      expect((await lab.status(h)).interfaces as Json[]).toHaveLength(1);
    });
  });
});
