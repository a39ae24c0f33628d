// One table of (source, protocol, port, expected) replayed through `bolt mesh test` (the model,
// offline) and through real traffic into host A's mesh interface (the nft rules bolt compiled
// from the same model): both must give the table's answer for every row (issue 9). The rules
// exercise Tailscale's protocol semantics: a rule without proto (tcp, udp and icmp), ports only
// for tcp/udp, an ICMP echo accepted by any accept rule that covers the pair, first match wins.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, requireBuild } from "./harness.js";
import type { Json } from "./harness.js";
import { HOSTS, MESH_IP, MeshLab, pingUntil } from "./mesh-topology.js";
import type { HostId, MeshFileOpts } from "./mesh-topology.js";

// A is the server; B a client; C carries no tag.
const WORLD: MeshFileOpts["world"] = { a: { tags: ["server"] }, b: { tags: ["client"] }, c: { tags: [] } };

const ACLS = `
[[acls]]
action = "accept"
src = ["tag:client"]
dst = ["tag:server:8080"]
proto = "tcp"

[[acls]]
action = "drop"
src = ["host-c"]
dst = ["host-a:5353"]
proto = "udp"

[[acls]]
action = "drop"
src = ["host-b"]
dst = ["host-a:9000"]

[[acls]]
action = "accept"
src = ["host-b"]
dst = ["host-a:9000-9001"]
`;

type Row = { from: "b" | "c"; proto: "tcp" | "udp" | "icmp"; port: number; expect: "accept" | "deny"; why: string };
const TABLE: Row[] = [
  { from: "b", proto: "tcp", port: 8080, expect: "accept", why: "rule 1" },
  { from: "c", proto: "tcp", port: 8080, expect: "deny", why: "C is not tag:client" },
  { from: "b", proto: "udp", port: 8080, expect: "deny", why: "rule 1 is tcp only" },
  { from: "c", proto: "udp", port: 5353, expect: "deny", why: "rule 2 drops it" },
  { from: "b", proto: "tcp", port: 9000, expect: "deny", why: "rule 3 (no proto: tcp too) before rule 4" },
  { from: "b", proto: "udp", port: 9000, expect: "deny", why: "rule 3 (no proto: udp too)" },
  { from: "b", proto: "tcp", port: 9001, expect: "accept", why: "rule 4 (no proto: tcp)" },
  { from: "b", proto: "udp", port: 9001, expect: "accept", why: "rule 4 (no proto: udp)" },
  { from: "b", proto: "tcp", port: 22, expect: "deny", why: "no rule" },
  { from: "b", proto: "icmp", port: 0, expect: "accept", why: "an accept rule covers B → A (ports do not matter for ping)" },
  { from: "c", proto: "icmp", port: 0, expect: "deny", why: "no accept rule covers C → A" },
];

/** Each row as an [[acl_tests]] entry expecting the table's answer. */
const TESTS = TABLE.map((r) => ["[[acl_tests]]", `src = "host-${r.from}"`, `proto = "${r.proto}"`, `${r.expect} = ["host-a:${r.port}"]`].join("\n")).join(
  "\n\n",
);

describe.skipIf(!!SKIP_REASON)("mesh ACLs: one table through `bolt mesh test` and through traffic", () => {
  const lab = new MeshLab(HOSTS, false);
  beforeAll(async () => {
    requireBuild();
    await lab.build();
  });
  afterAll(() => lab.cleanup());

  async function traffic(r: Row): Promise<"accept" | "deny"> {
    const from = lab.ns(r.from as HostId);
    if (r.proto === "icmp") return (await pingUntil(from, MESH_IP.a, 2)) ? "accept" : "deny";
    if (r.proto === "udp") {
      const got = await lab.listenUdp(lab.ns("a"), MESH_IP.a, r.port, 3);
      await lab.sendUdp(from, MESH_IP.a, r.port, `row-${r.port}`);
      return (await got()).includes(`row-${r.port}`) ? "accept" : "deny";
    }
    const got = await lab.listenTcp(lab.ns("a"), MESH_IP.a, r.port, 4);
    const connected = await lab.sendTcp(from, MESH_IP.a, r.port, `row-${r.port}`, 2);
    const received = (await got()).includes(`row-${r.port}`);
    return connected && received ? "accept" : "deny";
  }

  it("`bolt mesh test` gives every row the table's answer", async () => {
    // The model with each row as a test: a wrong answer would be a failure naming it.
    const file = lab.meshFile("a", { world: WORLD, extra: ACLS + "\n" + TESTS, name: "a-table-test.toml" });
    const r = await lab.bolt("a", ["mesh", "test", "--json", "-f", file]);
    const out = JSON.parse(r.stdout) as Json;
    expect(out.failures).toEqual([]);
    expect(out.tests).toBe(TABLE.length);
    expect(r.code).toBe(0);
  });

  it("the same policy as a Tailscale policy file (HuJSON): the same answers, the same nft rules", async () => {
    const acls = [
      { action: "accept", src: ["tag:client"], dst: ["tag:server:8080"], proto: "tcp" },
      { action: "drop", src: ["host-c"], dst: ["host-a:5353"], proto: "udp" },
      { action: "drop", src: ["host-b"], dst: ["host-a:9000"] },
      { action: "accept", src: ["host-b"], dst: ["host-a:9000-9001"] },
    ];
    const tests = TABLE.map((r) => ({ src: `host-${r.from}`, proto: r.proto, [r.expect]: [`host-a:${r.port}`] }));
    const hujson = `// the table's policy, as Tailscale writes it\n{\n  "acls": ${JSON.stringify(acls, null, 2)},\n  "tests": ${JSON.stringify(tests)},\n}\n`;
    lab.sb.write("table.hujson", hujson);
    const withFile = lab.meshText("a", { world: WORLD }).replace('control_server = "static"', 'control_server = "static"\npolicy_file = "table.hujson"');
    const file = lab.sb.write("a-policy-file.toml", withFile);
    const t = await lab.bolt("a", ["mesh", "test", "--json", "-f", file]);
    expect(JSON.parse(t.stdout)).toEqual({ tests: TABLE.length, failures: [] });
    const nftOf = async (f: string) => {
      const r = await lab.bolt("a", ["plan", "--json", "-f", f]);
      const nft = (JSON.parse(r.stdout).changes as Json[]).find((c) => c.kind === "nft");
      return Object.fromEntries(Object.entries(nft.after as Record<string, string>).filter(([k]) => k.startsWith("mesh_acl")));
    };
    const fromPolicy = await nftOf(file);
    expect(Object.keys(fromPolicy).length, "the mesh_acl chain's rules").toBeGreaterThan(5);
    expect(fromPolicy).toEqual(await nftOf(lab.meshFile("a", { world: WORLD, extra: ACLS, name: "a-toml-acls.toml" })));
  });

  it("the kernel gives every row the same answer (traffic into A's mesh interface)", async () => {
    // Every host applies the policy (each enforces it for what arrives on its own interface).
    for (const h of HOSTS) await lab.apply(h, lab.meshFile(h, { world: WORLD, extra: ACLS, name: `${h}-table.toml` }));
    // Handshakes first, so a denied row is the filter, not a tunnel still coming up.
    for (const h of ["b", "c"] as const) await pingUntil(lab.ns(h), MESH_IP.a, 3);
    const got: string[] = [];
    for (const r of TABLE) got.push(`${r.from} ${r.proto}/${r.port}: ${await traffic(r)} (${r.why})`);
    expect(got).toEqual(TABLE.map((r) => `${r.from} ${r.proto}/${r.port}: ${r.expect} (${r.why})`));
    for (const h of HOSTS) expect((await lab.bolt(h, ["destroy"])).code).toBe(0);
  }, 180_000);
});
