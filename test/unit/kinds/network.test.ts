// network: a Linux bridge with its gateway address, MTU and link up (plus the nft table and the
// ip_forward sysctl a network implies), through create, update, replace, delete and destroy.
import { describe, expect } from "vitest";
import { converge, describeTransition, intentOf, newWorld, writeConfigs } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";
const A = `
[networks.front]
subnet = "10.81.0.0/24"

[networks.lab]
subnet = "10.82.0.0/24"
mtu = 9000
internet = false
`;
// gateway (the bridge's address) and MTU change in place
const B = A.replace('subnet = "10.81.0.0/24"', 'subnet = "10.81.0.0/24"\ngateway = "10.81.0.254"\nmtu = 1400');
// a new bridge name replaces the bridge
const RENAMED = A.replace('subnet = "10.82.0.0/24"', 'bridge = "bolt-lab2"\nsubnet = "10.82.0.0/24"');
// an endpoint on lab
const WEB = `
[[endpoints]]
name = "web"
network = "front"
ip = "10.82.0.10"
`.replace("front", "lab");
// one network less
const ONE = `
[networks.front]
subnet = "10.81.0.0/24"
`;

const want = (text: string) => (): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text }), { netnsPrefix: `${T}-` }) });
const from = (text: string) => async () => {
  const w = newWorld(T);
  await converge(w, want(text)());
  return w;
};

describe("network", () => {
  describeTransition("create", {
    kind: "network",
    before: () => newWorld(T),
    to: want(A),
    changes: ["create network:front", "create network:lab", "create sysctl:net.ipv4.ip_forward", "create nft:inet bolt"],
    after: (k) => {
      expect(k.link(T, "bolt-front")).toMatchObject({
        kind: "bridge",
        mtu: 1500,
        up: true,
        addrgenmode: "none",
        alias: "bolt1,net=front",
        addrs: ["10.81.0.1/24"],
      });
      expect(k.link(T, "bolt-lab")).toMatchObject({ kind: "bridge", mtu: 9000, up: true, alias: "bolt1,net=lab", addrs: ["10.82.0.1/24"] });
      expect(k.ns(T).sysctl["net.ipv4.ip_forward"]).toBe("1");
      expect(k.nftTable(T, "inet", "bolt")!.sets.find((s) => s.name === "bridges")!.elements).toEqual(['"bolt-front"', '"bolt-lab"']);
    },
  });

  describeTransition("update: gateway and mtu", {
    kind: "network",
    before: from(A),
    to: want(B),
    changes: ["update network:front"],
    after: (k) => expect(k.link(T, "bolt-front")).toMatchObject({ mtu: 1400, addrs: ["10.81.0.254/24"] }),
  });

  describeTransition("replace: bridge renamed", {
    kind: "network",
    before: from(A),
    to: want(RENAMED),
    changes: ["replace network:lab", "update nft:inet bolt"],
    after: (k) => {
      expect(k.link(T, "bolt-lab")).toBeUndefined();
      expect(k.link(T, "bolt-lab2")).toMatchObject({ kind: "bridge", mtu: 9000, addrs: ["10.82.0.1/24"] });
    },
  });

  // The bridge is replaced while an endpoint stays on it: the port moves to the new bridge, and a
  // rollback must re-create the old bridge before it can move the port back.
  describeTransition("replace: bridge renamed with an endpoint plugged in", {
    kind: "network",
    before: from(A + WEB),
    to: want(RENAMED + WEB.replace("front", "lab")),
    after: (k) => expect(k.link(T, "bv-web")!.master).toBe("bolt-lab2"),
  });

  describeTransition("delete: one network removed", {
    kind: "network",
    before: from(A),
    to: want(ONE),
    changes: ["delete network:lab", "update nft:inet bolt"],
    after: (k) => expect(k.link(T, "bolt-lab")).toBeUndefined(),
  });

  describeTransition("destroy", {
    kind: "network",
    before: from(A),
    to: () => ({ ...want(A)(), destroy: true }),
    changes: ["delete nft:inet bolt", "delete sysctl:net.ipv4.ip_forward", "delete network:lab", "delete network:front"],
    after: (k) => {
      expect(k.ns(T).links.map((l) => l.name)).toEqual(["lo"]);
      expect(k.ns(T).sysctl["net.ipv4.ip_forward"]).toBe("0");
      expect(k.nftTable(T, "inet", "bolt")).toBeUndefined();
    },
  });
});
