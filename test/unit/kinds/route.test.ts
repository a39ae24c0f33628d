// route: one route per WireGuard allowed IP through the interface (protocol 176), and an exit
// node's default route in bolt's table (see rule.test.ts). Create, update (allowed IPs change,
// a route moves to another interface), delete. A sysctl written after the routes makes their
// undo count.
import { describe, expect } from "vitest";
import { converge, describeTransition, intentOf, newWorld, wgKeyPair, writeConfigs, writeKeyFile } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";
const [K0, K1] = [wgKeyPair(), wgKeyPair()];
const KEY0 = writeKeyFile("wg0.key", K0.priv);
const KEY1 = writeKeyFile("wg1.key", K1.priv);
const [P1, P2] = [wgKeyPair(), wgKeyPair()];

const iface = (name: string, key: string, addr: string, port: number, peers: string) => `
[wireguard.${name}]
private_key_file = "${key}"
listen_port = ${port}
address = "${addr}"
${peers}`;
const peer = (ifname: string, pub: string, allowed: string[]) => `
[[wireguard.${ifname}.peers]]
public_key = "${pub}"
allowed_ips = ${JSON.stringify(allowed)}
`;
const TTL = (v: number) => `\n[sysctl]\n"net.ipv4.ip_default_ttl" = ${v}\n`;
const A = iface("wg0", KEY0, "10.0.0.1/32", 51820, peer("wg0", P1.pub, ["10.0.0.2/32", "10.20.0.0/16"]) + peer("wg0", P2.pub, ["10.0.0.3/32"]));
// P1's 10.20.0.0/16 becomes 10.21.0.0/16, P2 also gets 10.30.0.0/16
const B = iface("wg0", KEY0, "10.0.0.1/32", 51820, peer("wg0", P1.pub, ["10.0.0.2/32", "10.21.0.0/16"]) + peer("wg0", P2.pub, ["10.0.0.3/32", "10.30.0.0/16"]));
// 10.20.0.0/16 moves to a peer of a second interface
const MOVED =
  iface("wg0", KEY0, "10.0.0.1/32", 51820, peer("wg0", P1.pub, ["10.0.0.2/32"]) + peer("wg0", P2.pub, ["10.0.0.3/32"])) +
  iface("wg1", KEY1, "10.1.0.1/24", 51821, peer("wg1", P1.pub, ["10.1.0.2/32", "10.20.0.0/16"]));

const want = (text: string) => (): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text })) });
const from = (text: string) => async () => {
  const w = newWorld(T);
  await converge(w, want(text)());
  return w;
};
const routes = (k: { ns(n: string): { routes: { dst: string; dev: string; table: number; protocol: string }[] } }) =>
  k
    .ns(T)
    .routes.map((r) => `${r.dst} ${r.dev} ${r.table} ${r.protocol}`)
    .sort();

describe("route", () => {
  describeTransition("create: routes for the peers' allowed IPs", {
    kind: "route",
    before: from(iface("wg0", KEY0, "10.0.0.1/32", 51820, "") + TTL(64)),
    to: want(A + TTL(63)),
    after: (k) => expect(routes(k)).toEqual(["10.0.0.2/32 wg0 254 176", "10.0.0.3/32 wg0 254 176", "10.20.0.0/16 wg0 254 176"]),
  });

  describeTransition("update: allowed IPs change (routes created and deleted)", {
    kind: "route",
    before: from(A + TTL(63)),
    to: want(B + TTL(62)),
    changes: [
      "delete route:main/10.20.0.0/16",
      "update sysctl:net.ipv4.ip_default_ttl",
      `update wg-peer:wg0/${P1.pub}`,
      `update wg-peer:wg0/${P2.pub}`,
      "create route:main/10.21.0.0/16",
      "create route:main/10.30.0.0/16",
    ],
    after: (k) => expect(routes(k)).toEqual(["10.0.0.2/32 wg0 254 176", "10.0.0.3/32 wg0 254 176", "10.21.0.0/16 wg0 254 176", "10.30.0.0/16 wg0 254 176"]),
  });

  describeTransition("update: a route moves to another interface", {
    kind: "route",
    before: from(A + TTL(63)),
    to: want(MOVED + TTL(62)),
    after: (k) => expect(routes(k)).toContain("10.20.0.0/16 wg1 254 176"),
  });

  describeTransition("delete: a peer and its routes removed", {
    kind: "route",
    before: from(A + TTL(63)),
    to: want(iface("wg0", KEY0, "10.0.0.1/32", 51820, peer("wg0", P2.pub, ["10.0.0.3/32"])) + TTL(62)),
    changes: ["delete route:main/10.20.0.0/16", "delete route:main/10.0.0.2/32", `delete wg-peer:wg0/${P1.pub}`, "update sysctl:net.ipv4.ip_default_ttl"],
    after: (k) => expect(routes(k)).toEqual(["10.0.0.3/32 wg0 254 176"]),
  });
});
