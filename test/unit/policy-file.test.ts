// policy_file = "acls.hujson": Tailscale's policy format as the mesh's ACLs (issue 9) — HuJSON
// comments and trailing commas, errors at file:line:col inside the policy, users, groups,
// autogroups, hosts aliases, tests, the seed's JSON ACL block, and warnings for what bolt does
// not enforce (ssh, nodeAttrs capabilities).
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { parseHujson } from "../../src/config/hujson.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { parseIp4 } from "../../src/core/ipv4.js";
import { INTERNET, compileAcls, evaluate, runAclTests } from "../../reconcilers/wireguard/acl.js";
import type { MeshIntent } from "../../reconcilers/wireguard/intent.js";
import { kinds } from "./helpers/builders.js";

const dir = mkdtempSync(join(tmpdir(), "bolt-policy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const b64 = (k: { export(o: { format: "jwk" }): unknown }, f: "d" | "x") =>
  Buffer.from((k.export({ format: "jwk" }) as Record<string, string>)[f]!, "base64url").toString("base64");
const keyFile = join(dir, "self.key");
writeFileSync(keyFile, b64(generateKeyPairSync("x25519").privateKey, "d") + "\n", { mode: 0o600 });
const pub = () => b64(generateKeyPairSync("x25519").publicKey, "x");
const PEERS = [
  { hostname: "laptop", address: "100.64.0.2", user: "alice@example.com", tags: [] },
  { hostname: "phone", address: "100.64.0.3", user: "alice@example.com", tags: [] },
  { hostname: "desk", address: "100.64.0.4", user: "bob@example.com", tags: [] },
  { hostname: "db", address: "100.64.0.5", user: "bob@example.com", tags: ["tag:prod"] },
];
let n = 0;

/** A ghostwire.toml (host "web", 100.64.0.1, tag:prod) with the given policy file next to it. */
function withPolicy(policy: string, extraToml = ""): { file: string; policyFile: string; load: () => ReturnType<typeof loadIntent> } {
  const k = n++;
  const policyFile = join(dir, `acls-${k}.hujson`);
  writeFileSync(policyFile, policy);
  const peers = PEERS.map(
    (p) => `[[peers]]\nhostname = "${p.hostname}"\npublic_key = "${pub()}"\naddress = "${p.address}"\nuser = "${p.user}"\ntags = ${JSON.stringify(p.tags)}\n`,
  ).join("\n");
  const file = join(dir, `g-${k}.toml`);
  writeFileSync(
    file,
    `[ghostwire]\ncontrol_server = "static"\npolicy_file = "acls-${k}.hujson"\n\n[node]\nhostname = "web"\ninterface = "gw0"\naddress = "100.64.0.1"\nprivate_key_file = "${keyFile}"\ntags = ["prod"]\n\n${peers}\n${extraToml}`,
  );
  return { file, policyFile, load: () => loadIntent([file], "") };
}
const meshOf = (r: ReturnType<typeof loadIntent>) => kinds(r.intent).mesh!;
const ip = (s: string) => parseIp4(s)!;
const verdict = (m: MeshIntent, src: string, dst: string, port: number | undefined, proto = "tcp") =>
  evaluate(compileAcls(m, m.self), ip(src), ip(dst), port, proto);
function errorsOf(f: () => unknown): Diagnostic[] {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e.diagnostics.filter((d) => d.severity === "error");
    throw e;
  }
  return [];
}
/** 1-based line and column of the first `needle` in `text`. */
function at(text: string, needle: string, from = 0): { line: number; col: number } {
  const i = text.indexOf(needle, from);
  expect(i, needle).toBeGreaterThanOrEqual(0);
  const before = text.slice(0, i).split("\n");
  return { line: before.length, col: before[before.length - 1]!.length + 1 };
}

describe("HuJSON", () => {
  it("comments and trailing commas, positions of keys and values", () => {
    const text = '{\n  // a comment\n  "acls": [ /* inline */\n    {"action": "accept",},\n  ],\n}\n';
    const { data, positions } = parseHujson("p.hujson", text);
    expect(data).toEqual({ acls: [{ action: "accept" }] });
    expect(positions.value("/acls/0/action")).toMatchObject({ line: 4, col: 16 });
    expect(positions.key("/acls")).toMatchObject({ line: 3, col: 3 });
  });
  it("a syntax error names its line and column; an unclosed comment names where it starts; duplicate keys are errors", () => {
    const cases: [string, number, number, string][] = [
      ['{\n  "acls": [\n    {"action" "accept"}\n  ]\n}', 3, 15, "expected :"],
      ['{\n  /* never closed\n  "a": 1\n}', 2, 3, "never closed"],
      ['{"a": 1, "a": 2}', 1, 10, "appears twice"],
      ['{"a": tru}', 1, 7, "unexpected"],
      ['{"a": 1} x', 1, 10, "after the end"],
    ];
    for (const [text, line, col, msg] of cases) {
      const errs = errorsOf(() => parseHujson("p.hujson", text));
      expect(errs[0]?.message, text).toContain(msg);
      expect(errs[0]?.source, text).toMatchObject({ file: "p.hujson", line, col });
    }
  });
});

describe("policy_file: Tailscale's policy as the mesh's ACLs", () => {
  it("the GhostWire seed's JSON ACL block loads: its nodeAttrs tag:… attributes tag the target", () => {
    const seed = `{
  "acls": [
    { "action": "accept", "src": ["tag:gaming-nodes"], "dst": ["tag:game-servers:27015"], "proto": "udp" },
    { "action": "accept", "src": ["tag:admin"], "dst": ["*:22", "*:3389"], "proto": "tcp" },
    { "action": "drop", "src": ["*"], "dst": ["tag:production:*"], "comment": "Default deny to production" }
  ],
  "nodeAttrs": [
    { "target": ["100.64.0.2"], "attr": ["tag:gaming-nodes", "tag:admin"] },
    { "target": ["web"], "attr": ["tag:game-servers", "tag:production"] }
  ]
}`;
    const m = meshOf(withPolicy(seed).load());
    expect(m.peers.find((p) => p.hostname === "laptop")!.tags).toEqual(["gaming-nodes", "admin"]);
    expect(verdict(m, "100.64.0.2", "100.64.0.1", 27015, "udp")).toBe("accept");
    expect(verdict(m, "100.64.0.2", "100.64.0.1", 22, "tcp")).toBe("accept");
    expect(verdict(m, "100.64.0.3", "100.64.0.1", 22, "tcp")).toBe("deny");
  });

  it("users, groups, autogroup:member/tagged/self, hosts aliases", () => {
    const { load } = withPolicy(`{
  "groups": { "group:admins": ["alice@example.com"], "group:all": ["group:admins", "bob@"] },
  "hosts": { "office": "192.168.10.0/24", "printer": "100.64.0.4" },
  "tagOwners": { "tag:prod": ["group:admins"], "tag:unused": [] },
  "acls": [
    { "action": "accept", "src": ["group:admins"], "dst": ["tag:prod:22"] },
    { "action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"] },
    { "action": "accept", "src": ["bob@"], "dst": ["printer:631", "office:*"] },
    { "action": "accept", "src": ["autogroup:tagged"], "dst": ["autogroup:tagged:5432"] },
  ],
}`);
    const m = meshOf(load());
    // group:admins = alice: both her devices reach tag:prod:22; bob's do not.
    expect(verdict(m, "100.64.0.2", "100.64.0.1", 22)).toBe("accept");
    expect(verdict(m, "100.64.0.3", "100.64.0.5", 22)).toBe("accept");
    expect(verdict(m, "100.64.0.4", "100.64.0.1", 22)).toBe("deny");
    // autogroup:self: alice's laptop reaches alice's phone on any port, not bob's desk.
    expect(verdict(m, "100.64.0.2", "100.64.0.3", 8080)).toBe("accept");
    expect(verdict(m, "100.64.0.2", "100.64.0.4", 8080)).toBe("deny");
    expect(verdict(m, "100.64.0.4", "100.64.0.2", 8080)).toBe("deny");
    // A tagged node is its tags, not its user's: bob's tag:prod db is not bob's device.
    expect(verdict(m, "100.64.0.5", "100.64.0.4", 8080)).toBe("deny");
    // "bob@" (a user prefix) and hosts aliases.
    expect(verdict(m, "100.64.0.4", "100.64.0.4", 631)).toBe("accept");
    expect(verdict(m, "100.64.0.4", "192.168.10.7", 9100)).toBe("accept");
    expect(verdict(m, "100.64.0.2", "192.168.10.7", 9100)).toBe("deny");
    // autogroup:tagged: web (tag:prod) ↔ db (tag:prod) on 5432.
    expect(verdict(m, "100.64.0.1", "100.64.0.5", 5432)).toBe("accept");
    expect(verdict(m, "100.64.0.2", "100.64.0.5", 5432)).toBe("deny");
  });

  it("autogroup:internet is the public IPv4 space (no private, CGNAT, loopback, link-local or multicast)", () => {
    const m = meshOf(withPolicy(`{"acls": [{"action": "accept", "src": ["*"], "dst": ["autogroup:internet:*"]}]}`).load());
    expect(verdict(m, "100.64.0.2", "1.1.1.1", 443)).toBe("accept");
    expect(verdict(m, "100.64.0.2", "203.0.113.9", 443)).toBe("accept");
    for (const d of ["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "127.0.0.1", "169.254.1.1", "224.0.0.1"])
      expect(verdict(m, "100.64.0.2", d, 443), d).toBe("deny");
    expect(INTERNET.length).toBeLessThan(64); // a handful of CIDRs, one nft interval set
  });

  it("tests in the policy are run like [[acl_tests]]; a failing one is an error at its place in the policy", () => {
    const policy = `{
  "acls": [{ "action": "accept", "src": ["alice@example.com"], "dst": ["web:443"] }],
  "tests": [
    { "src": "alice@example.com", "accept": ["web:443"], "deny": ["web:22"] },
    { "src": "bob@example.com", "accept": ["web:443"] },
  ],
}`;
    const { file, policyFile } = withPolicy(policy);
    const r = loadIntent([file], "", { skipAclTests: true });
    expect(runAclTests(meshOf(r), meshOf(r).self).map((f) => `${f.test.src} ${f.target} ${f.got}`)).toEqual(["bob@example.com web:443 deny"]);
    const errs = errorsOf(() => loadIntent([file], ""));
    expect(errs.map((e) => e.message)).toEqual(["acl_test: bob@example.com → web:443 (tcp) is denied, the test expects accept"]);
    expect(errs[0]!.source).toMatchObject({ file: policyFile, ...at(policy, '{ "src": "bob@') });
  });

  it("errors point into the policy file: an unknown tag, group, autogroup, a test with a port range, a bad action", () => {
    const policy = `{
  "acls": [
    { "action": "accept", "src": ["tag:nope"], "dst": ["web:22"] },
    { "action": "accept", "src": ["group:ghosts"], "dst": ["autogroup:everyone:*"] },
    { "action": "allow", "src": ["*"], "dst": ["*:*"] },
  ],
  "tests": [{ "src": "web", "accept": ["db:20-30"] }],
}`;
    const { file, policyFile } = withPolicy(policy);
    const errs = errorsOf(() => loadIntent([file], ""));
    const find = (s: string) => errs.find((e) => e.message.includes(s));
    expect(find('unknown tag "tag:nope"')?.source).toMatchObject({ file: policyFile, ...at(policy, '"tag:nope"') });
    expect(find('unknown group "group:ghosts"')?.source).toMatchObject({ file: policyFile, ...at(policy, '"group:ghosts"') });
    expect(find('unknown autogroup "autogroup:everyone"')?.source).toMatchObject({ file: policyFile, ...at(policy, '"autogroup:everyone:*"') });
    expect(find('acls[2].action must be "accept"')?.source).toMatchObject({ file: policyFile, ...at(policy, '"allow"') });
    expect(find('acl_test destination "db:20-30"')?.source).toMatchObject({ file: policyFile, ...at(policy, '"db:20-30"') });
  });

  it("ssh, nodeAttrs capabilities and unknown sections are warnings (accepted, not enforced), never silently dropped", () => {
    const policy = `{
  "acls": [{ "action": "accept", "src": ["*"], "dst": ["*:*"] }],
  "ssh": [{ "action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"] }],
  "nodeAttrs": [{ "target": ["*"], "attr": ["funnel"] }],
  "autoApprovers": { "routes": { "192.168.0.0/24": ["tag:prod"] } },
}`;
    const { policyFile, load } = withPolicy(policy);
    const w = load().warnings.filter((d) => d.source?.file === policyFile);
    expect(w.map((d) => d.message)).toEqual([
      expect.stringMatching(/^accepted, not enforced: policy "ssh"/),
      expect.stringMatching(/^accepted, not enforced: policy "autoApprovers"/),
      expect.stringMatching(/^accepted, not enforced: nodeAttrs attributes "funnel"/),
    ]);
    expect(w[0]!.source).toMatchObject(at(policy, '"ssh"'));
  });

  it("policy_file and [[acls]] together are refused; a missing policy file is an error at policy_file", () => {
    const both = withPolicy(`{"acls": []}`, `[[acls]]\naction = "accept"\nsrc = ["*"]\ndst = ["*:*"]\n`);
    expect(errorsOf(both.load).map((e) => e.message)).toContain("policy_file and [[acls]]/[[acl_tests]] in the same mesh: keep the ACLs in one place");
    const missing = withPolicy("{}");
    rmSync(missing.policyFile);
    const errs = errorsOf(missing.load);
    expect(errs[0]?.message).toContain("cannot read config file: no such file");
    expect(errs[0]?.source?.file).toBe(missing.policyFile);
  });
});

describe("[features] switches", () => {
  it("subnet_routing = false and exit_nodes = false: what the node asks for is a warning at its key, and nothing of it is compiled", () => {
    const k = n++;
    const file = join(dir, `f-${k}.toml`);
    const text = `[ghostwire]\ncontrol_server = "static"\n\n[features]\nsubnet_routing = false\nexit_nodes = false\n\n[node]\nhostname = "web"\ninterface = "gw0"\naddress = "100.64.0.1"\nprivate_key_file = "${keyFile}"\nadvertise_routes = ["192.168.50.0/24"]\nexit_node = true\nuse_exit_node = "gw"\n\n[[peers]]\nhostname = "gw"\npublic_key = "${pub()}"\naddress = "100.64.0.9"\nroutes = ["10.9.0.0/16"]\n`;
    writeFileSync(file, text);
    const r = loadIntent([file], "");
    const m = meshOf(r);
    expect(m.advertise).toEqual([]);
    expect(m.exitNode).toBe(false);
    expect(m.useExitNode).toBeUndefined();
    expect(kinds(r.intent).wireguard[0]!.peers[0]!.allowedIps.map((c) => c.prefix)).toEqual([32]);
    const w = r.warnings.map((d) => `${d.source?.line}: ${d.message}`);
    for (const key of ["advertise_routes", "exit_node", "use_exit_node"])
      expect(w).toContain(
        `${at(text, `${key} =`).line}: accepted, not enforced: node.${key} — [features] ${key === "advertise_routes" ? "subnet_routing" : "exit_nodes"} = false turns ${key === "advertise_routes" ? "subnet routes" : "exit nodes"} off`,
      );
  });
});
