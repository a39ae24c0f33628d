// wireguard: a userspace WireGuard interface — `wireguard-go IF` makes the tun device, ip gives
// it its alias (ownership), addresses, MTU and up, `wg set` its key, port and fwmark. Create,
// update (port, MTU, addresses), key change, delete (with its peers and routes), destroy.
import { describe, expect, it } from "vitest";
import { publicKeyOf } from "../helpers/fake-kernel.js";
import { wgMountFile } from "../../../src/exec/run-dir.js";
import { converge, describeTransition, intentOf, newWorld, planOn, wgKeyPair, wgPsk, writeConfigs, writeKeyFile } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";
const self = wgKeyPair();
const KEY = writeKeyFile("wg0.key", self.priv);
const other = wgKeyPair();
const KEY2 = writeKeyFile("wg0-new.key", other.priv);
const [P1, P2] = [wgKeyPair(), wgKeyPair()];
const PSK = writeKeyFile("p1.psk", wgPsk());

const IFACE = `
[wireguard.wg0]
private_key_file = "${KEY}"
listen_port = 51820
address = "10.0.0.1/24"
`;
const PEERS = `
[[wireguard.wg0.peers]]
public_key = "${P1.pub}"
allowed_ips = ["10.0.0.2/32"]
endpoint = "198.18.0.9:51820"
persistent_keepalive = 25
preshared_key_file = "${PSK}"

[[wireguard.wg0.peers]]
public_key = "${P2.pub}"
allowed_ips = ["10.0.0.3/32", "10.9.0.0/16"]
`;
const WITH_PEERS = IFACE + PEERS;
// port, MTU and a second address change in place
const CHANGED = IFACE.replace("listen_port = 51820", "listen_port = 51821\nmtu = 1380").replace(
  'address = "10.0.0.1/24"',
  'address = ["10.0.0.1/24", "10.0.1.1/24"]',
);
const NET = '\n[networks.front]\nsubnet = "10.81.0.0/24"\n';
const TTL = '\n[sysctl]\n"net.ipv4.ip_default_ttl" = 63\n';

const want = (text: string) => (): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text })) });
const from = (text: string) => async () => {
  const w = newWorld(T);
  await converge(w, want(text)());
  return w;
};

describe("wireguard", () => {
  describeTransition("create: interface", {
    kind: "wireguard",
    before: () => newWorld(T),
    to: want(IFACE),
    changes: ["create wireguard:wg0"],
    after: (k) => {
      const l = k.link(T, "wg0")!;
      expect(l).toMatchObject({ kind: "tun", tunType: "tun", mtu: 1420, up: true, addrs: ["10.0.0.1/24"], alias: `bolt1,wg=wg0,key=${KEY}` });
      // Served through the target's own /var/run/wireguard (its mount namespace), not the host's.
      expect(l.wg).toEqual({ privateKey: self.priv, listenPort: 51820, fwmark: 0, peers: [], socketScope: wgMountFile(T) });
      expect(publicKeyOf(l.wg!.privateKey)).toBe(self.pub);
      expect(k.wgMounts.has(wgMountFile(T))).toBe(true);
    },
  });

  // Like wg-quick: 10.0.0.2/32 and 10.0.0.3/32 are inside the interface's own 10.0.0.1/24, whose
  // connected route already sends them there; only 10.9.0.0/16 needs a route.
  describeTransition("create: interface with peers (and their routes)", {
    kind: "wireguard",
    before: () => newWorld(T),
    to: want(WITH_PEERS),
    changes: ["create wireguard:wg0", `create wg-peer:wg0/${P1.pub}`, `create wg-peer:wg0/${P2.pub}`, "create route:main/10.9.0.0/16"],
    after: (k) => {
      const routes = k.state.netns[T]!.routes.map((r) => r.dst);
      expect(routes).toEqual(["10.9.0.0/16"]);
      // A peer without a preshared key is not given the all-zero one (`preshared-key /dev/null`).
      expect(k.forwardWrites().some((w) => w.args.includes("/dev/null"))).toBe(false);
    },
  });

  describeTransition("update: listen port, MTU, addresses", {
    kind: "wireguard",
    before: from(IFACE),
    to: want(CHANGED),
    changes: ["update wireguard:wg0"],
    after: (k) => {
      expect(k.link(T, "wg0")).toMatchObject({ mtu: 1380, addrs: ["10.0.0.1/24", "10.0.1.1/24"] });
      expect(k.link(T, "wg0")!.wg!.listenPort).toBe(51821);
    },
  });

  // By design the old private key is kept nowhere, so a key change cannot be undone: a failure
  // after the `wg set … private-key NEW` leaves the new key on the interface.
  describeTransition("update: private key changed (a sysctl is written after it)", {
    kind: "wireguard",
    before: from(IFACE),
    to: want(IFACE.replace(KEY, KEY2) + TTL),
    changes: ["create sysctl:net.ipv4.ip_default_ttl", "update wireguard:wg0"],
    knownBad: {
      "fail@2": "the old private key is not kept (by design), so `wg set private-key NEW` has no undo",
      "ignore@2": "the old private key is not kept (by design), so `wg set private-key NEW` has no undo",
      "kill@2": "the old private key is not kept (by design), so `wg set private-key NEW` has no undo",
    },
    after: (k) => expect(publicKeyOf(k.link(T, "wg0")!.wg!.privateKey)).toBe(other.pub),
  });

  describeTransition("delete: interface with peers and routes removed", {
    kind: "wireguard",
    // a sysctl changes too: it is written after the link delete, so the delete's undo is needed
    before: from(WITH_PEERS + TTL),
    to: want(TTL.replace("63", "62")),
    after: (k) => {
      expect(k.link(T, "wg0")).toBeUndefined();
      expect(k.ns(T).routes).toEqual([]);
    },
  });

  describeTransition("destroy (with a network, whose bridge is deleted after the interface)", {
    kind: "wireguard",
    before: from(WITH_PEERS + NET),
    to: () => ({ ...want(WITH_PEERS + NET)(), destroy: true }),
    after: (k) => expect(k.ns(T).links.map((l) => l.name)).toEqual(["lo"]),
  });
});

describe("wireguard: the kernel module where the host has it", () => {
  // Read-only detection (/sys/module/wireguard, else `modprobe -n`): no probe device is made.
  it("a new device is `ip link add … type wireguard` when the module is loaded; wireguard-go otherwise", async () => {
    const withModule = newWorld(T, (k) => k.state.dirs.push("/sys/module/wireguard"));
    const plan = await planOn(withModule, want(IFACE)());
    const dev = plan.steps.find((s) => s.change.id === "wireguard:wg0")!;
    expect(dev.change.after!.spec.type).toBe("kernel");
    expect(dev.ops.map((o) => `${o.tool} ${o.args.join(" ")}`)).toContain("ip link add dev wg0 type wireguard");
    expect(dev.ops.some((o) => o.args[0] === "wireguard-go")).toBe(false);
    const plain = await planOn(newWorld(T), want(IFACE)());
    const dev2 = plain.steps.find((s) => s.change.id === "wireguard:wg0")!;
    expect(dev2.change.after!.spec.type).toBe("userspace");
    expect(dev2.ops.map((o) => `${o.tool} ${o.args.join(" ")}`)).toContain("exec wireguard-go wg0");
  });
});
