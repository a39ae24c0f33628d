// wg-peer: one resource per WireGuard peer, changed with `wg set IF peer …` clauses batched into
// one `wg set` per interface. Create, update (endpoint, keepalive, allowed IPs, preshared key
// changed and removed), delete (the undo puts the preshared key back from the file the store
// remembers), and the mesh's peers.
import { describe, expect, it } from "vitest";
import { planWaves } from "../../../src/core/batches.js";
import { converge, describeTransition, intentOf, newWorld, planOn, wgKeyPair, wgPsk, writeConfigs, writeKeyFile } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";
const self = wgKeyPair();
const KEY = writeKeyFile("wg0.key", self.priv);
const [P1, P2, P3] = [wgKeyPair(), wgKeyPair(), wgKeyPair()];
const [psk1, psk2] = [wgPsk(), wgPsk()];
const PSK1 = writeKeyFile("p1.psk", psk1);
const PSK2 = writeKeyFile("p1-new.psk", psk2);

const IFACE = `
[wireguard.wg0]
private_key_file = "${KEY}"
listen_port = 51820
address = "10.0.0.1/32"
`;
const peer = (pub: string, allowed: string[], extra = "") => `
[[wireguard.wg0.peers]]
public_key = "${pub}"
allowed_ips = ${JSON.stringify(allowed)}
${extra}`;
const P1_CONF = `endpoint = "198.18.0.9:51820"\npersistent_keepalive = 25\npreshared_key_file = "${PSK1}"`;
const PEERS = IFACE + peer(P1.pub, ["10.0.0.2/32"], P1_CONF) + peer(P2.pub, ["10.0.0.3/32"]);
// P1: new endpoint, keepalive, allowed IPs and preshared key
const CHANGED =
  IFACE +
  peer(P1.pub, ["10.0.0.2/32", "10.0.5.0/24"], `endpoint = "198.18.0.10:51821"\npersistent_keepalive = 10\npreshared_key_file = "${PSK2}"`) +
  peer(P2.pub, ["10.0.0.3/32"]);
// P2 (a dial-in peer, no endpoint) gets an endpoint to dial
const P2_DIALS = IFACE + peer(P1.pub, ["10.0.0.2/32"], P1_CONF) + peer(P2.pub, ["10.0.0.3/32"], 'endpoint = "198.18.0.11:51820"');
const NO_PSK = IFACE + peer(P1.pub, ["10.0.0.2/32"], 'endpoint = "198.18.0.9:51820"\npersistent_keepalive = 25') + peer(P2.pub, ["10.0.0.3/32"]);
const TTL = (v: number) => `\n[sysctl]\n"net.ipv4.ip_default_ttl" = ${v}\n`;

const want =
  (text: string, file = "bolt-network.toml") =>
  (): Desired => ({ intent: intentOf(writeConfigs({ [file]: text })) });
const from = (text: string, file?: string) => async () => {
  const w = newWorld(T);
  await converge(w, want(text, file)());
  return w;
};
const peersOf = (k: { link(ns: string, n: string): { wg?: { peers: unknown[] } } | undefined }) => k.link(T, "wg0")!.wg!.peers;

const MESH = (peers: string) => `
[ghostwire]
control_server = "static"

# the fake kernel models IPv4 only: this mesh keeps IPv6 off (mesh-ipv6 tests cover it)
[features]
ipv6 = false

[node]
hostname = "host-a"
interface = "gw0"
address = "100.64.0.1"
private_key_file = "${KEY}"
${peers}`;
const meshPeer = (host: string, pub: string, addr: string) => `
[[peers]]
hostname = "${host}"
public_key = "${pub}"
endpoint = "198.18.0.9:41641"
address = "${addr}"
`;

describe("wg-peer", () => {
  describeTransition("create: two peers on an existing interface", {
    kind: "wg-peer",
    before: from(IFACE),
    to: want(PEERS),
    changes: [`create wg-peer:wg0/${P1.pub}`, `create wg-peer:wg0/${P2.pub}`, "create route:main/10.0.0.2/32", "create route:main/10.0.0.3/32"],
    after: (k) =>
      expect(peersOf(k)).toEqual([
        { publicKey: P1.pub, psk: psk1, endpoint: "198.18.0.9:51820", allowedIps: ["10.0.0.2/32"], keepalive: 25 },
        { publicKey: P2.pub, psk: "", endpoint: "", allowedIps: ["10.0.0.3/32"], keepalive: 0 },
      ]),
  });

  describeTransition("update: endpoint, keepalive, allowed IPs, preshared key", {
    kind: "wg-peer",
    before: from(PEERS),
    to: want(CHANGED),
    changes: [`update wg-peer:wg0/${P1.pub}`, "create route:main/10.0.5.0/24"],
    after: (k) =>
      expect(peersOf(k)[0]).toEqual({ publicKey: P1.pub, psk: psk2, endpoint: "198.18.0.10:51821", allowedIps: ["10.0.0.2/32", "10.0.5.0/24"], keepalive: 10 }),
  });

  describeTransition("update: preshared key removed (a sysctl is written after it)", {
    kind: "wg-peer",
    before: from(PEERS),
    to: want(NO_PSK + TTL(63)),
    changes: ["create sysctl:net.ipv4.ip_default_ttl", `update wg-peer:wg0/${P1.pub}`],
    after: (k) => expect(peersOf(k)[0]).toMatchObject({ psk: "" }),
  });

  // Was a bug (fixed): the undo of giving a peer that had none a preshared key was empty; it is
  // `preshared-key /dev/null` (clears it).
  describeTransition("update: preshared key added", {
    kind: "wg-peer",
    before: from(NO_PSK + TTL(63)),
    to: want(PEERS + TTL(62)),
    changes: ["update sysctl:net.ipv4.ip_default_ttl", `update wg-peer:wg0/${P1.pub}`],
    after: (k) => expect(peersOf(k)[0]).toMatchObject({ psk: psk1 }),
  });

  // Was a known limitation (fixed): `wg set` cannot clear an endpoint, so giving a dial-in peer one
  // had no undo; the undo now removes the peer and adds it back as it was (without an endpoint).
  describeTransition("update: a dial-in peer gets an endpoint (a sysctl is written after it)", {
    kind: "wg-peer",
    before: from(PEERS + TTL(63)),
    to: want(P2_DIALS + TTL(62)),
    changes: ["update sysctl:net.ipv4.ip_default_ttl", `update wg-peer:wg0/${P2.pub}`],
    after: (k) => expect(peersOf(k)[1]).toMatchObject({ endpoint: "198.18.0.11:51820" }),
  });

  describeTransition("delete: a peer with a preshared key (and its route)", {
    kind: "wg-peer",
    before: from(PEERS + TTL(63)),
    to: want(IFACE + peer(P2.pub, ["10.0.0.3/32"]) + TTL(62)),
    changes: ["delete route:main/10.0.0.2/32", `delete wg-peer:wg0/${P1.pub}`, "update sysctl:net.ipv4.ip_default_ttl"],
    after: (k) => expect(peersOf(k).map((p) => (p as { publicKey: string }).publicKey)).toEqual([P2.pub]),
  });

  describeTransition("mesh: a peer joins", {
    kind: "wg-peer",
    before: from(MESH(meshPeer("host-b", P1.pub, "100.64.0.2")), "ghostwire.toml"),
    to: want(MESH(meshPeer("host-b", P1.pub, "100.64.0.2") + meshPeer("host-c", P3.pub, "100.64.0.3")), "ghostwire.toml"),
    changes: [`create wg-peer:gw0/${P3.pub}`, "create route:main/100.64.0.3/32"],
  });

  describeTransition("mesh: a peer leaves", {
    kind: "wg-peer",
    before: from(MESH(meshPeer("host-b", P1.pub, "100.64.0.2") + meshPeer("host-c", P3.pub, "100.64.0.3")), "ghostwire.toml"),
    to: want(MESH(meshPeer("host-c", P3.pub, "100.64.0.3")), "ghostwire.toml"),
    changes: ["delete route:main/100.64.0.2/32", `delete wg-peer:gw0/${P1.pub}`],
  });

  // A key rotation (MULTIHOST.md §2.4): peers are keyed by public key, so the old peer goes and
  // the new one comes — in one `wg set` (the removal is not run in the destroy phase before it).
  describeTransition("mesh: a peer's key changes: old removed, new added, one wg set", {
    kind: "wg-peer",
    before: from(MESH(meshPeer("host-b", P1.pub, "100.64.0.2")), "ghostwire.toml"),
    to: want(MESH(meshPeer("host-b", P2.pub, "100.64.0.2")), "ghostwire.toml"),
    changes: [`delete wg-peer:gw0/${P1.pub}`, `create wg-peer:gw0/${P2.pub}`],
    after: (k, plan) => {
      expect(k.link(T, "gw0")!.wg!.peers.map((p) => p.publicKey)).toEqual([P2.pub]);
      const batches = planWaves(plan.steps.flatMap((st) => st.ops)).flat();
      expect(batches.map((b) => [b.tool, b.ops.map((o) => o.args.slice(0, 4).join(" "))])).toEqual([
        ["wg", [`gw0 peer ${P1.pub} remove`, `gw0 peer ${P2.pub} allowed-ips`]],
      ]);
    },
  });

  it("a peer removed without a new key taking its addresses still goes in the destroy phase", async () => {
    const w = await from(MESH(meshPeer("host-b", P1.pub, "100.64.0.2") + meshPeer("host-c", P3.pub, "100.64.0.3")), "ghostwire.toml")();
    const plan = await planOn(w, want(MESH(meshPeer("host-c", P3.pub, "100.64.0.3") + meshPeer("host-d", P2.pub, "100.64.0.4")), "ghostwire.toml")());
    const removal = plan.steps.find((st) => st.change.id === `wg-peer:gw0/${P1.pub}`)!;
    expect(removal.ops.map((o) => o.destroy)).toEqual([true]);
  });
});
