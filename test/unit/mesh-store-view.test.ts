// The effective view of a mesh store (issue 10, MULTIHOST.md §2.4): approved routes and exit
// offers (admin approval or the policy's autoApprovers), the HA primary of a prefix several
// nodes announce, endpoint choice from status, and a store-backed host's intent: its ACLs from
// the store's policy (one source of truth), its tags from its identity record.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import { formatCidr4 } from "../../src/core/ipv4.js";
import { bestEndpoint, exitOf, primaries, routesOf } from "../../reconcilers/wireguard/store-view.js";
import type { AutoApprovers } from "../../reconcilers/wireguard/store-view.js";
import type { MeshSnapshot, NodeRecord, NodeRequest } from "../../reconcilers/wireguard/store.js";
import { parseCidr4 } from "../../src/core/ipv4.js";
import { kinds, storeNode } from "./helpers/builders.js";

const b64 = (k: { export(o: { format: "jwk" }): unknown }, f: "d" | "x") =>
  Buffer.from((k.export({ format: "jwk" }) as Record<string, string>)[f]!, "base64url").toString("base64");
const pair = () => {
  const k = generateKeyPairSync("x25519");
  return { priv: b64(k.privateKey, "d"), pub: b64(k.publicKey, "x") };
};
const node = (name: string, o: Partial<NodeRecord> = {}): NodeRecord => storeNode(name, { key_policy: "node", ...o });
const request = (public_key: string, o: Partial<NodeRequest> = {}): NodeRequest => ({
  v: 1,
  public_key,
  hostname: "h",
  tags: [],
  routes: [],
  exit_node: false,
  at: "2026-01-01T00:00:00Z",
  ...o,
});
const snapshot = (nodes: NodeRecord[], requests: Record<string, NodeRequest>, extra: Partial<MeshSnapshot> = {}): MeshSnapshot => ({
  revision: "7",
  meta: { v: 1, mesh_id: "m1", cidr4: "100.64.0.0/10", listen_port: 41641, keepalive: 25, created_at: "" },
  nodes,
  requests,
  ipam: {},
  ...extra,
});
const cidrs = (l: { network: number; prefix: number }[]) => l.map(formatCidr4);

describe("routes and exit nodes from the store", () => {
  const auto: AutoApprovers = { routes: [{ prefix: parseCidr4("10.0.0.0/8")!, by: ["tag:router"] }], exitNode: ["tag:exit"] };
  const s = snapshot([], {
    r: request("k", { routes: ["10.1.2.0/24", "192.168.5.0/24", "172.16.0.0/12"], exit_node: true }),
  });
  it("an announced route counts only where the admin allowed it or an auto-approver names one of the node's tags", () => {
    expect(cidrs(routesOf(s, node("r"), undefined))).toEqual([]);
    expect(cidrs(routesOf(s, node("r", { routes_allowed: ["192.168.5.0/24"] }), undefined))).toEqual(["192.168.5.0/24"]);
    // 10.0.0.0/8 approves 10.1.2.0/24 (inside it), not 172.16.0.0/12; only for tag:router.
    expect(cidrs(routesOf(s, node("r", { tags: ["router"] }), auto))).toEqual(["10.1.2.0/24"]);
    expect(cidrs(routesOf(s, node("r", { tags: ["web"] }), auto))).toEqual([]);
    // Allowed but never announced: nothing (the node's request decides what it carries).
    expect(cidrs(routesOf(s, node("x", { routes_allowed: ["10.9.0.0/16"] }), auto))).toEqual([]);
  });
  it("an exit offer counts when allowed or auto-approved; never without the offer", () => {
    expect(exitOf(s, node("r"), auto)).toBe(false);
    expect(exitOf(s, node("r", { exit_node_allowed: true }), undefined)).toBe(true);
    expect(exitOf(s, node("r", { tags: ["exit"] }), auto)).toBe(true);
    expect(exitOf(s, node("x", { exit_node_allowed: true }), auto)).toBe(false);
  });
});

describe("HA primary of a prefix two nodes announce", () => {
  const by = new Map([["10.1.0.0/24", ["r2", "r1"]]]);
  it("the first live one by name; sticky while the current primary lives; moves only to a live one", () => {
    expect(primaries(by, new Set(["r1", "r2"]))).toEqual({ "10.1.0.0/24": "r1" });
    expect(primaries(by, new Set(["r2"]), { "10.1.0.0/24": "r1" })).toEqual({ "10.1.0.0/24": "r2" });
    // r1 back: the route stays on r2 (no flap back).
    expect(primaries(by, new Set(["r1", "r2"]), { "10.1.0.0/24": "r2" })).toEqual({ "10.1.0.0/24": "r2" });
    // Nobody live: it stays where it was.
    expect(primaries(by, new Set(), { "10.1.0.0/24": "r2" })).toEqual({ "10.1.0.0/24": "r2" });
    // Liveness unknown (stale snapshot): nothing moves.
    expect(primaries(by, undefined, { "10.1.0.0/24": "r2" })).toEqual({ "10.1.0.0/24": "r2" });
    // The previous primary no longer announces it: the first live.
    expect(primaries(by, new Set(["r2"]), { "10.1.0.0/24": "r9" })).toEqual({ "10.1.0.0/24": "r2" });
  });
});

describe("endpoint candidates", () => {
  it("the first public one, else the first", () => {
    expect(bestEndpoint(["192.168.1.5:41641", "203.0.113.5:41641"])).toBe("203.0.113.5:41641");
    expect(bestEndpoint(["10.0.0.5:41641", "100.100.1.1:41641"])).toBe("10.0.0.5:41641");
    expect(bestEndpoint(["[fd00::5]:41641", "[2001:db8::5]:41641"])).toBe("[2001:db8::5]:41641");
    expect(bestEndpoint([])).toBeUndefined();
  });
});

describe("a store-backed host's intent", () => {
  const dir = mkdtempSync(join(tmpdir(), "bolt-store-view-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const me = pair();
  const r1 = pair();
  const r2 = pair();
  const keyFile = join(dir, "self.key");
  writeFileSync(keyFile, `${me.priv}\n`, { mode: 0o600 });
  let n = 0;
  const file = (extra = "") => {
    const f = join(dir, `g${n++}.toml`);
    writeFileSync(
      f,
      `[ghostwire]\ncontrol_server = "etcd://127.0.0.1:1"\nauth_key_file = "x.boltkey"\n\n[node]\nhostname = "me"\ninterface = "gw0"\naccept_routes = true\nuse_exit_node = "r2"\ntags = ["asked"]\nprivate_key_file = "${keyFile}"\n${extra}`,
    );
    return f;
  };
  const snap = (policy?: string) =>
    snapshot(
      [
        node("me", { mesh_ip4: "100.64.0.10", tags: ["client"] }),
        node("r1", { mesh_ip4: "100.64.0.11", tags: ["router"] }),
        node("r2", { mesh_ip4: "100.64.0.12", tags: ["router"], exit_node_allowed: true }),
      ],
      {
        me: request(me.pub),
        r1: request(r1.pub, { routes: ["10.1.0.0/24"], endpoint: "198.18.0.11:41641" }),
        r2: request(r2.pub, { routes: ["10.1.0.0/24", "10.2.0.0/24"], exit_node: true, endpoint: "198.18.0.12:41641" }),
      },
      {
        status: { r2: { v: 1, endpoints: ["192.168.9.12:41641", "203.0.113.12:41641"], listen_port: 41641, boot_id: "b", started_at: "" } },
        ...(policy ? { policy: { text: policy, mod_revision: "5" } } : {}),
      },
    );
  const POLICY = `{
  // one policy for the whole mesh
  "autoApprovers": { "routes": { "10.0.0.0/8": ["tag:router"] } },
  "acls": [ { "action": "accept", "src": ["tag:client"], "dst": ["tag:router:22"] } ],
}`;
  it("routes auto-approved, one peer per HA prefix (its primary), exit by approval, the status endpoint; ACLs and tags from the store", () => {
    const { intent } = loadIntent([file()], "", { external: { wireguard: { snapshot: snap(POLICY), self: "me", primaries: { "10.1.0.0/24": "r2" } } } });
    const { mesh, wireguard } = kinds(intent);
    const peers = Object.fromEntries(wireguard[0]!.peers.map((p) => [p.hostname, p]));
    expect(cidrs(peers.r1!.allowedIps)).toEqual(["100.64.0.11/32"]);
    expect(cidrs(peers.r2!.allowedIps)).toEqual(["100.64.0.12/32", "10.1.0.0/24", "10.2.0.0/24", "0.0.0.0/0"]);
    expect(peers.r2!.endpoint).toBe("203.0.113.12:41641");
    expect(peers.r1!.endpoint).toBe("198.18.0.11:41641");
    expect(mesh!.self.tags).toEqual(["client"]);
    expect(mesh!.acls.map((a) => a.dst)).toEqual([["tag:router:22"]]);
  });
  it("a prefix this host announces itself is on its own link: no peer carries it here, whoever is primary", () => {
    const { intent } = loadIntent([file('advertise_routes = ["10.1.0.0/24"]\n')], "", {
      external: { wireguard: { snapshot: snap(POLICY), self: "me", primaries: { "10.1.0.0/24": "r2" } } },
    });
    const peers = Object.fromEntries(kinds(intent).wireguard[0]!.peers.map((p) => [p.hostname, p]));
    expect(cidrs(peers.r2!.allowedIps)).toEqual(["100.64.0.12/32", "10.2.0.0/24", "0.0.0.0/0"]);
    expect(cidrs(peers.r1!.allowedIps)).toEqual(["100.64.0.11/32"]);
  });
  it("without a policy nothing is auto-approved; local [[acls]] beside the store is an error at its line", () => {
    const { intent } = loadIntent([file()], "", { external: { wireguard: { snapshot: snap(), self: "me" } } });
    const peers = kinds(intent).wireguard[0]!.peers;
    expect(peers.map((p) => cidrs(p.allowedIps))).toEqual([["100.64.0.11/32"], ["100.64.0.12/32", "0.0.0.0/0"]]);
    const f = file(`\n[[acls]]\naction = "accept"\nsrc = ["*"]\ndst = ["*:*"]\n`);
    const view = { snapshot: snap(POLICY), self: "me", primaries: { "10.1.0.0/24": "r1" } };
    expect(() => loadIntent([f], "", { external: { wireguard: view } })).toThrow(ConfigError);
    try {
      loadIntent([f], "", { external: { wireguard: view } });
    } catch (e) {
      expect((e as Error).message).toMatch(new RegExp(`${f}:13:1: error: a mesh on an etcd store takes its ACLs from the store's policy`));
    }
  });
  it("a bad policy in the store is an error at etcd:policy@REV:line:col", () => {
    const bad = `{\n  "acls": [ { "action": "allow", "src": ["*"], "dst": ["*:*"] } ]\n}`;
    expect(() => loadIntent([file()], "", { external: { wireguard: { snapshot: snap(bad), self: "me" } } })).toThrow(
      /etcd:policy@5:2:\d+: error: acls\[0\]\.action/,
    );
  });
});
