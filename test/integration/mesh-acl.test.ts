// Mesh ACLs on the real kernel (issue 4): Tailscale-shaped [[acls]] compiled to nft on the mesh
// interface of the receiving host, default deny once any ACL exists. Proven with traffic (nc
// listeners with timeouts in A's namespace): B→A udp/27015 arrives, udp/27016 and tcp/22 do
// not — and tcp/22 did arrive before the ACLs, so it is the ACL that stops it. `bolt mesh test`
// evaluates [[acl_tests]] offline, and a failing assertion blocks apply with nothing applied.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, posOf, requireBuild, run, snapshot } from "./harness.js";
import type { Json } from "./harness.js";
import { HOSTS, MESH_IP, MeshLab, pingUntil } from "./mesh-topology.js";
import type { HostId, MeshFileOpts } from "./mesh-topology.js";

const WORLD: MeshFileOpts["world"] = { a: { tags: ["server"] }, b: { tags: ["client"] }, c: { tags: ["client"] } };

// "drop" (the schema's spelling) before a broader accept: tcp/22 is refused only by it.
const ACLS = `
[[acls]]
action = "accept"
src = ["tag:client"]
dst = ["tag:server:27015"]
proto = "udp"

[[acls]]
action = "drop"
src = ["tag:client"]
dst = ["host-a:22"]
proto = "tcp"

[[acls]]
action = "accept"
src = ["tag:client"]
dst = ["tag:server:*"]
proto = "tcp"

[[acls]]
action = "accept"
src = ["*"]
dst = ["*:*"]
proto = "icmp"
`;

const TESTS = `
[[acl_tests]]
src = "host-b"
proto = "udp"
accept = ["host-a:27015"]
deny = ["host-a:27016"]

[[acl_tests]]
src = "tag:client"
proto = "tcp"
accept = ["host-a:8080"]
deny = ["host-a:22"]
`;

/** Would open udp/27016, but carries an assertion that fails: nothing of it may be applied. */
const BAD = `
[[acls]]
action = "accept"
src = ["*"]
dst = ["host-a:27016"]
proto = "udp"

[[acl_tests]]
src = "host-b"
proto = "tcp"
accept = ["host-a:22"]
`;

describe.skipIf(!!SKIP_REASON)("mesh ACLs: compiled to nft, proven with traffic, tested offline", () => {
  const lab = new MeshLab();
  beforeAll(async () => {
    requireBuild();
    await lab.build();
  });
  afterAll(() => lab.cleanup());

  const udpArrives = async (port: number): Promise<boolean> => {
    const got = await lab.listenUdp(lab.ns("a"), MESH_IP.a, port, 3);
    await lab.sendUdp(lab.ns("b"), MESH_IP.a, port, `hello-${port}`);
    return (await got()).includes(`hello-${port}`);
  };
  const tcpArrives = async (port: number): Promise<{ connected: boolean; received: boolean }> => {
    const got = await lab.listenTcp(lab.ns("a"), MESH_IP.a, port, 4);
    const connected = await lab.sendTcp(lab.ns("b"), MESH_IP.a, port, `tcp-${port}`, 2);
    return { connected, received: (await got()).includes(`tcp-${port}`) };
  };
  const nftRules = async (h: HostId): Promise<Json[]> => {
    const out = await run(["ip", "netns", "exec", lab.ns(h), "nft", "-j", "list", "chain", "inet", "bolt", "mesh_acl"]);
    return out.code === 0 ? (JSON.parse(out.stdout).nftables as Json[]).filter((i) => i.rule).map((i) => i.rule) : [];
  };

  it("without ACLs, B reaches A on tcp/22 and udp/27016 (the control)", async () => {
    for (const h of HOSTS) await lab.apply(h, lab.meshFile(h, { world: WORLD }));
    expect(await pingUntil(lab.ns("b"), MESH_IP.a)).toBe(true);
    expect(await tcpArrives(22)).toEqual({ connected: true, received: true });
    expect(await udpArrives(27016)).toBe(true);
  });

  it("bolt mesh test passes the file's [[acl_tests]] offline", async () => {
    const file = lab.meshFile("a", { world: WORLD, extra: ACLS + TESTS, name: "a-acl.toml" });
    const r = await lab.bolt("a", ["mesh", "test", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("All 4 ACL assertion(s) pass.");
    const j = await lab.bolt("a", ["mesh", "test", "--json", "-f", file]);
    expect(JSON.parse(j.stdout)).toEqual({ tests: 4, failures: [] });
  });

  it("with ACLs: B→A udp/27015 arrives; udp/27016 and tcp/22 are dropped on A's mesh interface", async () => {
    for (const h of HOSTS) await lab.apply(h, lab.meshFile(h, { world: WORLD, extra: ACLS + TESTS, name: `${h}-acl.toml` }));
    const rules = await nftRules("a");
    const deny = () =>
      nftRules("a").then((rs) => rs.find((x) => JSON.stringify(x.expr).includes('"drop"') && JSON.stringify(x.expr).includes(lab.ifname("a"))));
    expect(rules.length).toBeGreaterThan(2);
    const dropsBefore = (await deny())?.expr.find((e: Json) => e.counter)?.counter.packets ?? -1;
    expect(dropsBefore).toBeGreaterThanOrEqual(0);

    expect(await udpArrives(27015)).toBe(true);
    expect(await udpArrives(27016)).toBe(false);
    expect(await tcpArrives(22)).toEqual({ connected: false, received: false });
    // The broader tcp accept after the drop works: the drop rule is what stops tcp/22.
    expect(await tcpArrives(8080)).toEqual({ connected: true, received: true });
    // ICMP is allowed by its own ACL; C (also tag:client) gets the same udp/27015.
    expect(await pingUntil(lab.ns("b"), MESH_IP.a)).toBe(true);
    const dropsAfter = (await deny())!.expr.find((e: Json) => e.counter).counter.packets;
    expect(dropsAfter, "the default-deny rule counted the dropped packets").toBeGreaterThan(dropsBefore);
    // The other direction is unaffected by A's policy for incoming packets: A → B tcp is denied by B's copy.
    const got = await lab.listenTcp(lab.ns("b"), MESH_IP.b, 22, 4);
    expect(await lab.sendTcp(lab.ns("a"), MESH_IP.b, 22, "x", 2)).toBe(false);
    expect(await got()).toBe("");
  });

  it("a failing [[acl_tests]] assertion blocks apply at its file:line:col, nothing applied", async () => {
    const text = lab.meshText("a", { world: WORLD, extra: BAD + ACLS });
    const file = lab.sb.write("a-bad.toml", text);
    const t = await lab.bolt("a", ["mesh", "test", "-f", file]);
    expect(t.code).toBe(1);
    const before = await snapshot(lab.ns("a"));
    const r = await lab.bolt("a", ["apply", "-f", file]);
    expect(r.code).toBe(1);
    const at = posOf(text, "[[acl_tests]]");
    expect(r.stderr).toContain(`${file}:${at.line}:${at.col}: error: acl_test`);
    expect(r.stderr).toMatch(/acl_test: host-b → host-a:22 \(tcp\) is denied, the test expects accept/);
    expect(await snapshot(lab.ns("a"))).toEqual(before);
    expect(await udpArrives(27016)).toBe(false);
  });

  it("destroy removes bolt's nft table with the mesh ACLs; no key material anywhere", async () => {
    for (const h of HOSTS) expect((await lab.bolt(h, ["destroy"])).code).toBe(0);
    for (const h of HOSTS) expect(await nftRules(h)).toEqual([]);
    await lab.expectNoSecrets();
  });
});
