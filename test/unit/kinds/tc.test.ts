// tc: HTB trees on the devices bolt shapes, ifbs with their clsact redirect, the classes of
// [[traffic.rules]]. Create (an endpoint's both directions and a network's ingress, with a rule),
// update in place (rates change, a rule's class comes and goes), delete (caps removed while the
// endpoint stays), destroy. Every transition also fails, is ignored and is killed at every op.
import { describe, expect } from "vitest";
import { converge, describeTransition, intentOf, newWorld, writeConfigs } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";

const config = (o: { ep?: string; net?: string; rules?: string }) => `
[networks.games]
subnet = "10.78.0.0/24"
${o.net ? `bandwidth = ${o.net}` : ""}

[[endpoints]]
name = "srv"
network = "games"
ip = "10.78.0.10"
${o.ep ? `bandwidth = ${o.ep}` : ""}
${o.rules ?? ""}`;
const RULE = '\n[[traffic.rules]]\npattern = "udp:27015"\npriority = "critical"\n';
const RULE2 = '\n[[traffic.rules]]\nprotocol = "icmp"\nrate = "1mbit"\n';
const BOTH = config({ ep: '{ ingress = "10mbit", egress = "5mbit" }', net: '{ ingress = "50mbit" }', rules: RULE });

const want = (text: string) => (): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text })) });
const from = (text: string) => async () => {
  const w = newWorld(T);
  await converge(w, want(text)());
  return w;
};
type K = {
  link(
    ns: string,
    name: string,
  ):
    | {
        tc?: {
          htb?: { classes: Record<string, { rate: string; ceil: string; prio: number; leaf?: string }> };
          clsact?: boolean;
          redirects?: Record<string, string>;
        };
      }
    | undefined;
};
const classes = (k: K, dev: string) =>
  Object.entries(k.link(T, dev)?.tc?.htb?.classes ?? {})
    .map(([id, c]) => `${id} prio ${c.prio} rate ${c.rate} ceil ${c.ceil}${c.leaf ? ` (${c.leaf})` : ""}`)
    .sort();

describe("tc", () => {
  describeTransition("create: an endpoint's two caps, a network's ingress cap, a rule's class on both trees", {
    kind: "tc",
    before: from(config({})),
    to: want(BOTH),
    after: (k) => {
      expect(classes(k, "bv-srv")).toEqual([
        "b017:1 prio 0 rate 10Mbit ceil 10Mbit",
        "b017:10 prio 0 rate 5Mbit ceil 10Mbit (pfifo limit 1000)",
        "b017:2 prio 2 rate 5Mbit ceil 10Mbit (pfifo limit 1000)",
      ]);
      expect(classes(k, "ifb-bv-srv")).toEqual(["b017:1 prio 0 rate 5Mbit ceil 5Mbit", "b017:2 prio 2 rate 5Mbit ceil 5Mbit (pfifo limit 1000)"]);
      expect(classes(k, "bolt-games")).toHaveLength(3);
      expect(k.link(T, "bv-srv")?.tc?.redirects).toEqual({ "45079": "ifb-bv-srv" });
    },
  });

  describeTransition("update in place: rates change, a second rule's class is added", {
    kind: "tc",
    before: from(BOTH),
    to: want(config({ ep: '{ ingress = "20mbit", egress = "5mbit" }', net: '{ ingress = "50mbit" }', rules: RULE + RULE2 })),
    changes: ["update nft:inet bolt", "update tc:htb/bolt-games", "update tc:htb/bv-srv"],
  });

  describeTransition("delete: the endpoint's caps go, the endpoint stays", {
    kind: "tc",
    before: from(BOTH),
    to: want(config({ net: '{ ingress = "50mbit" }', rules: RULE })),
    after: (k) => {
      expect(k.link(T, "bv-srv")?.tc?.htb).toBeUndefined();
      expect(k.link(T, "bv-srv")?.tc?.clsact).toBeFalsy();
      expect(k.link(T, "ifb-bv-srv")).toBeUndefined();
    },
  });

  describeTransition("destroy", {
    kind: "tc",
    before: from(BOTH),
    to: () => ({ ...want(BOTH)(), destroy: true }),
    after: (k) => expect(k.link(T, "ifb-bv-srv")).toBeUndefined(),
  });
});
