// The mesh ACL model (issue 4): names resolve to addresses (tags, hostnames, CIDRs, "*"),
// first match wins, anything unmatched is denied; [[acl_tests]] run against the same model;
// and the nft rules compiled from it carry the same order and verdicts.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import { formatCidr4, parseIp4 } from "../../src/core/ipv4.js";
import { compileAcls, evaluate, parsePorts, resolveNames, runAclTests } from "../../reconcilers/wireguard/acl.js";
import type { AclIntent, AclTestIntent, MeshIntent, MeshNode } from "../../reconcilers/wireguard/intent.js";
import { compileTable } from "../../reconcilers/nft/compile.js";
import { kinds } from "./helpers/builders.js";

const at = { file: "ghostwire.toml", line: 1, col: 1 };
const ip = (s: string) => parseIp4(s)!;
const node = (hostname: string, addr: string, tags: string[]): MeshNode => ({ hostname, address: ip(addr), tags });

const A = node("host-a", "100.64.0.1", ["server"]);
const B = node("host-b", "100.64.0.2", ["client"]);
const C = node("host-c", "100.64.0.3", ["client", "admin"]);

function mesh(acls: Omit<AclIntent, "source">[], tests: Omit<AclTestIntent, "source">[] = []): MeshIntent {
  return {
    ifname: "gw0",
    self: A,
    peers: [B, C],
    advertise: [],
    exitNode: false,
    magicDns: false,
    acls: acls.map((a) => ({ ...a, source: at })),
    aclTests: tests.map((t) => ({ ...t, source: at })),
    source: at,
  };
}
const verdict = (m: MeshIntent, src: string, dst: string, port: number | undefined, proto: string) =>
  evaluate(compileAcls(m, m.self), ip(src), ip(dst), port, proto);

describe("resolveNames and parsePorts", () => {
  const nodes = [A, B, C];
  it("tags, hostnames, CIDRs, bare addresses, *", () => {
    expect((resolveNames("tag:client", nodes) as { network: number; prefix: number }[]).map(formatCidr4)).toEqual(["100.64.0.2/32", "100.64.0.3/32"]);
    expect((resolveNames("host-c", nodes) as { network: number; prefix: number }[]).map(formatCidr4)).toEqual(["100.64.0.3/32"]);
    expect((resolveNames("192.168.1.0/24", nodes) as { network: number; prefix: number }[]).map(formatCidr4)).toEqual(["192.168.1.0/24"]);
    expect((resolveNames("10.1.2.3", nodes) as { network: number; prefix: number }[]).map(formatCidr4)).toEqual(["10.1.2.3/32"]);
    expect(resolveNames("*", nodes)).toBe("any");
    expect(resolveNames("tag:nobody", nodes)).toEqual([]);
  });
  it("ports: single, range, list, *", () => {
    expect(parsePorts("22")).toEqual([[22, 22]]);
    expect(parsePorts("27015-27030")).toEqual([[27015, 27030]]);
    expect(parsePorts("80,443,8000-8080")).toEqual([
      [80, 80],
      [443, 443],
      [8000, 8080],
    ]);
    expect(parsePorts("*")).toBe("any");
  });
});

describe("evaluate: first match wins, default deny", () => {
  const m = mesh([
    { action: "accept", src: ["tag:client"], dst: ["tag:server:27015"], proto: "udp" },
    { action: "deny", src: ["host-c"], dst: ["host-a:22"], proto: "tcp" },
    { action: "accept", src: ["tag:admin"], dst: ["*:22,80-90"] },
    { action: "accept", src: ["*"], dst: ["*:*"], proto: "icmp" },
  ]);
  it("the issue's example: B→A udp/27015 accepted, tcp/22 denied", () => {
    expect(verdict(m, "100.64.0.2", "100.64.0.1", 27015, "udp")).toBe("accept");
    expect(verdict(m, "100.64.0.2", "100.64.0.1", 22, "tcp")).toBe("deny");
  });
  it("the protocol must match when the rule names one", () => {
    expect(verdict(m, "100.64.0.2", "100.64.0.1", 27015, "tcp")).toBe("deny");
  });
  it("an earlier deny beats a later accept (C is admin, but its tcp/22 to A is denied first)", () => {
    expect(verdict(m, "100.64.0.3", "100.64.0.1", 22, "tcp")).toBe("deny");
    expect(verdict(m, "100.64.0.3", "100.64.0.2", 22, "tcp")).toBe("accept");
    expect(verdict(m, "100.64.0.3", "100.64.0.2", 85, "tcp")).toBe("accept");
    expect(verdict(m, "100.64.0.3", "100.64.0.2", 91, "tcp")).toBe("deny");
  });
  it("a rule without proto covers tcp, udp and icmp (Tailscale's default), not other protocols", () => {
    expect(verdict(m, "100.64.0.3", "100.64.0.2", 80, "udp")).toBe("accept");
    expect(verdict(m, "100.64.0.2", "100.64.0.3", undefined, "icmp")).toBe("accept");
    const only22 = mesh([{ action: "accept", src: ["*"], dst: ["*:22"] }]);
    expect(verdict(only22, "100.64.0.2", "100.64.0.1", 22, "sctp")).toBe("deny");
    expect(verdict(only22, "100.64.0.2", "100.64.0.1", undefined, "gre")).toBe("deny");
  });
  it("an ICMP echo is accepted by any accept rule covering source and destination, whatever its ports or protocol (Tailscale)", () => {
    expect(verdict(mesh([{ action: "accept", src: ["*"], dst: ["*:22"] }]), "100.64.0.2", "100.64.0.1", undefined, "icmp")).toBe("accept");
    expect(verdict(mesh([{ action: "accept", src: ["*"], dst: ["*:22"], proto: "tcp" }]), "100.64.0.2", "100.64.0.1", undefined, "icmp")).toBe("accept");
    // …but a tcp-only drop rule does not drop it, and a rule for other hosts does not cover it.
    expect(verdict(mesh([{ action: "deny", src: ["*"], dst: ["*:*"], proto: "tcp" }]), "100.64.0.2", "100.64.0.1", undefined, "icmp")).toBe("deny");
    expect(verdict(mesh([{ action: "accept", src: ["*"], dst: ["host-b:22"] }]), "100.64.0.3", "100.64.0.1", undefined, "icmp")).toBe("deny");
  });
  it("no ACLs at all: nothing is filtered, and the model says so (it does not deny)", () => {
    expect(verdict(mesh([]), "100.64.0.2", "100.64.0.1", 22, "tcp")).toBe("accept");
  });
  it("a source outside every rule (not a mesh node) is denied", () => {
    expect(verdict(m, "10.9.9.9", "100.64.0.1", 27015, "udp")).toBe("deny");
  });
  it("no ACLs at all: compileAcls is empty and evaluate denies (the nft side adds no chain then)", () => {
    expect(compileAcls(mesh([]), A)).toEqual([]);
  });
});

describe("runAclTests", () => {
  const acls = [{ action: "accept" as const, src: ["tag:client"], dst: ["tag:server:27015"], proto: "udp" }];
  it("passing assertions give no failures", () => {
    expect(runAclTests(mesh(acls, [{ src: "host-b", proto: "udp", accept: ["host-a:27015"], deny: ["host-a:27016", "host-c:27015"] }]), A)).toEqual([]);
  });
  it("every failing target is reported with what it expected and what it got", () => {
    const t = { src: "host-b", proto: "tcp", accept: ["host-a:22"], deny: ["host-a:27015"] };
    const f = runAclTests(mesh(acls, [t]), A);
    expect(f.map((x) => [x.target, x.expected, x.got])).toEqual([["host-a:22", "accept", "deny"]]);
    const u = runAclTests(mesh(acls, [{ src: "host-b", proto: "udp", accept: [], deny: ["host-a:27015"] }]), A);
    expect(u.map((x) => [x.target, x.expected, x.got])).toEqual([["host-a:27015", "deny", "accept"]]);
  });
  it("a tag source checks every member (one failing member is a failure)", () => {
    const m = mesh(
      [{ action: "accept", src: ["host-b"], dst: ["host-a:443"], proto: "tcp" }],
      [{ src: "tag:client", proto: "tcp", accept: ["host-a:443"], deny: [] }],
    );
    const f = runAclTests(m, A);
    expect(f).toHaveLength(1);
    expect(f[0]!.got).toBe("deny");
  });
});

describe("compiled to nft on the mesh interface", () => {
  const m = mesh([
    { action: "accept", src: ["tag:client"], dst: ["tag:server:27015"], proto: "udp" },
    { action: "deny", src: ["host-c"], dst: ["host-a:22"], proto: "tcp" },
    { action: "accept", src: ["*"], dst: ["*:*"], proto: "icmp" },
  ]);
  const table = compileTable({
    nft: { portForwards: [], rules: [], segments: [], dockerResolution: false, analyzeForeign: false, loadBalancers: [], lbDown: [] },
    networks: [],
    endpointIps: new Map(),
    mesh: { intent: m, self: A },
  })!;
  const chain = (name: string) => table.chains.find((c) => c.name === name);

  it("mesh_acl: established first, the ACLs in order, then drop everything else from the mesh", () => {
    expect(chain("mesh_acl")!.rules.map((r) => r.text)).toEqual([
      "ct state established,related accept",
      // an accept rule lets ICMP echo through to what it covers (Tailscale)
      "ip saddr { 100.64.0.2, 100.64.0.3 } ip daddr 100.64.0.1 meta l4proto icmp counter accept",
      "ip saddr { 100.64.0.2, 100.64.0.3 } ip daddr 100.64.0.1 meta l4proto udp th dport 27015 counter accept",
      "ip saddr 100.64.0.3 ip daddr 100.64.0.1 meta l4proto tcp th dport 22 counter drop",
      // "*" to "*": either family's ICMP (this mesh has no IPv6 prefix, so no ip6 rules above)
      "meta l4proto { icmp, ipv6-icmp } counter accept",
      'iifname "gw0" counter drop',
    ]);
  });

  it("input and forward jump to mesh_acl only for packets from the mesh interface", () => {
    for (const c of ["input", "forward"]) expect(chain(c)!.rules.map((r) => r.text)).toContain('iifname "gw0" jump mesh_acl');
  });

  it("a mesh without ACLs, routes or exit node needs no nft table at all", () => {
    const none = compileTable({
      nft: { portForwards: [], rules: [], segments: [], dockerResolution: false, analyzeForeign: false, loadBalancers: [], lbDown: [] },
      networks: [],
      endpointIps: new Map(),
      mesh: { intent: mesh([]), self: A },
    });
    expect(none).toBeUndefined();
  });
});

describe("ACLs as written in ghostwire.toml", () => {
  const dir = mkdtempSync(join(tmpdir(), "bolt-mesh-acl-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const b64 = (k: { export(o: { format: "jwk" }): unknown }, f: "d" | "x") =>
    Buffer.from((k.export({ format: "jwk" }) as Record<string, string>)[f]!, "base64url").toString("base64");
  const self = generateKeyPairSync("x25519");
  const peerKey = b64(generateKeyPairSync("x25519").publicKey, "x");
  const keyFile = join(dir, "self.key");
  writeFileSync(keyFile, b64(self.privateKey, "d") + "\n", { mode: 0o600 });
  let n = 0;
  const load = (acls: string, o: { selfTags?: string; peerTags?: string } = {}) => {
    const file = join(dir, `g${n++}.toml`);
    const text = `[ghostwire]\ncontrol_server = "static"\n\n[node]\nhostname = "host-a"\ninterface = "gw0"\naddress = "100.64.0.1"\nprivate_key_file = "${keyFile}"\ntags = ${o.selfTags ?? '["server"]'}\n\n[[peers]]\nhostname = "host-b"\npublic_key = "${peerKey}"\naddress = "100.64.0.2"\ntags = ${o.peerTags ?? '["client"]'}\n\n${acls}`;
    writeFileSync(file, text);
    return { file, text, load: () => loadIntent([file], "") };
  };

  it("action = \"drop\" (the schema's and the seed's spelling) denies — it must never compile to accept", () => {
    const { intent } = load(
      `[[acls]]\naction = "drop"\nsrc = ["host-b"]\ndst = ["host-a:22"]\nproto = "tcp"\n\n[[acls]]\naction = "accept"\nsrc = ["*"]\ndst = ["*:*"]\n`,
    ).load();
    const m = kinds(intent).mesh!;
    expect(m.acls.map((a) => a.action)).toEqual(["deny", "accept"]);
    expect(verdict(m, "100.64.0.2", "100.64.0.1", 22, "tcp")).toBe("deny");
    expect(verdict(m, "100.64.0.2", "100.64.0.1", 80, "tcp")).toBe("accept");
    const t = compileTable({
      nft: { portForwards: [], rules: [], segments: [], dockerResolution: false, analyzeForeign: false, loadBalancers: [], lbDown: [] },
      networks: [],
      endpointIps: new Map(),
      mesh: { intent: m, self: m.self },
    })!;
    expect(t.chains.find((c) => c.name === "mesh_acl")!.rules[1]!.text).toBe(
      "ip saddr 100.64.0.2 ip daddr 100.64.0.1 meta l4proto tcp th dport 22 counter drop",
    );
  });

  it('proto = "all" matches every protocol (and compiles without a protocol match)', () => {
    const { intent } = load(`[[acls]]\naction = "accept"\nsrc = ["host-b"]\ndst = ["host-a:*"]\nproto = "all"\n`).load();
    const m = kinds(intent).mesh!;
    for (const p of ["tcp", "udp", "icmp", "sctp"]) expect(verdict(m, "100.64.0.2", "100.64.0.1", 443, p)).toBe("accept");
    const t = compileTable({
      nft: { portForwards: [], rules: [], segments: [], dockerResolution: false, analyzeForeign: false, loadBalancers: [], lbDown: [] },
      networks: [],
      endpointIps: new Map(),
      mesh: { intent: m, self: m.self },
    })!;
    expect(t.chains.find((c) => c.name === "mesh_acl")!.rules.map((r) => r.text)).toContain("ip saddr 100.64.0.2 ip daddr 100.64.0.1 counter accept");
  });

  it("ports with a protocol that has none (icmp, gre) are refused at the proto; sctp has ports", () => {
    const { load: sctp } = load(`[[acls]]\naction = "accept"\nsrc = ["host-b"]\ndst = ["host-a:22"]\nproto = "sctp"\n`);
    expect(verdict(kinds(sctp().intent).mesh!, "100.64.0.2", "100.64.0.1", 22, "sctp")).toBe("accept");
    for (const proto of ["icmp", "gre"]) {
      const { file, text, load: l } = load(`[[acls]]\naction = "accept"\nsrc = ["host-b"]\ndst = ["host-a:22"]\nproto = "${proto}"\n`);
      let err: unknown;
      try {
        l();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      const d = (err as ConfigError).diagnostics.find((x) => x.severity === "error")!;
      expect(d.message).toContain(`ACL proto "${proto}" with ports`);
      const i = text.indexOf(`"${proto}"`);
      const lines = text.slice(0, i).split("\n");
      expect(d.source).toEqual({ file, line: lines.length, col: lines[lines.length - 1]!.length + 1 });
    }
  });

  it("an icmp acl_test ignores the port of its target, like the kernel", () => {
    const { intent } = load(
      `[[acls]]\naction = "accept"\nsrc = ["*"]\ndst = ["*:*"]\nproto = "icmp"\n\n[[acl_tests]]\nsrc = "host-b"\nproto = "icmp"\naccept = ["host-a:0", "host-a:22"]\n`,
    ).load();
    expect(runAclTests(kinds(intent).mesh!, kinds(intent).mesh!.self)).toEqual([]);
  });

  it("an acl_test destination is one host and one port: ranges, lists, *, CIDRs and port 99999 are errors at their position", () => {
    for (const [dst, why] of [
      ["host-a:20-30", 'one port, not "20-30"'],
      ["host-a:22,80", 'one port, not "22,80"'],
      ["host-a:*", 'one port, not "*"'],
      ["*:22", 'one host, not "*"'],
      ["100.64.0.0/24:22", "not a CIDR"],
      ["host-a:99999", "port 99999 is not 0-65535"],
    ]) {
      const {
        file,
        text,
        load: l,
      } = load(`[[acls]]\naction = "accept"\nsrc = ["*"]\ndst = ["*:*"]\n\n[[acl_tests]]\nsrc = "host-b"\naccept = ["host-a:22", ${JSON.stringify(dst)}]\n`);
      let err: unknown;
      try {
        l();
      } catch (e) {
        err = e;
      }
      expect(err, dst).toBeInstanceOf(ConfigError);
      const d = (err as ConfigError).diagnostics.find((x) => x.severity === "error" && x.message.includes("acl_test destination"));
      expect(d?.message, dst).toContain(why);
      const i = text.indexOf(JSON.stringify(dst));
      const lines = text.slice(0, i).split("\n");
      expect(d!.source, dst).toEqual({ file, line: lines.length, col: lines[lines.length - 1]!.length + 1 });
    }
  });

  it('a node\'s tags may be written "tag:NAME" (as Tailscale writes them) or bare: ACLs naming tag:NAME match either', () => {
    const { intent } = load(`[[acls]]\naction = "accept"\nsrc = ["tag:ops"]\ndst = ["tag:server:22"]\n`, {
      selfTags: '["tag:server"]',
      peerTags: '["ops"]',
    }).load();
    expect(verdict(kinds(intent).mesh!, "100.64.0.2", "100.64.0.1", 22, "tcp")).toBe("accept");
  });
});
