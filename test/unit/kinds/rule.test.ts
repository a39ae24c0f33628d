// rule: the exit-node policy routing of a mesh node with use_exit_node (wg-quick's scheme):
// `lookup main suppress_prefixlength 0` and `not fwmark 0xb000000/0xf000000 lookup 20100`, with
// the default route in table 20100, WireGuard's fwmark, the mangle rules and src_valid_mark.
// Create (a new node, and a node that starts using an exit), delete (stops using it), destroy.
import { describe, expect, it } from "vitest";
import { converge, describeTransition, intentOf, newWorld, wgKeyPair, writeConfigs, writeKeyFile } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";
const self = wgKeyPair();
const KEY = writeKeyFile("gw0.key", self.priv);
const [EXIT, OTHER] = [wgKeyPair(), wgKeyPair()];

const MESH = (node = "") => `
[ghostwire]
control_server = "static"

# the fake kernel models IPv4 only: this mesh keeps IPv6 off (mesh-ipv6 tests cover it)
[features]
ipv6 = false

[node]
hostname = "host-a"
interface = "gw0"
address = "100.64.0.1"
listen_port = 41641
private_key_file = "${KEY}"
${node}

[[peers]]
hostname = "exit-1"
public_key = "${EXIT.pub}"
endpoint = "198.18.0.9:41641"
address = "100.64.0.2"

[[peers]]
hostname = "host-c"
public_key = "${OTHER.pub}"
endpoint = "198.18.0.10:41641"
address = "100.64.0.3"
`;
const USING = MESH('use_exit_node = "exit-1"');

const want = (text: string, boltfile?: string) => (): Desired => ({
  intent: intentOf(writeConfigs({ "ghostwire.toml": text, ...(boltfile ? { "bolt-network.toml": boltfile } : {}) })),
});
const TTL = '[sysctl]\n"net.ipv4.ip_default_ttl" = 63\n';
const from = (text: string) => async () => {
  const w = newWorld(T);
  await converge(w, want(text)());
  return w;
};

describe("rule", () => {
  describeTransition("create: a new node that uses an exit node", {
    kind: "rule",
    before: () => newWorld(T),
    to: want(USING),
    after: (k) => {
      expect(k.ns(T).rules.filter((r) => r.protocol === "176")).toEqual([
        { priority: 20000, not: false, table: 254, suppressPrefixlen: 0, protocol: "176" },
        { priority: 20001, not: true, fwmark: 0xb000000, fwmask: 0xf000000, table: 20100, protocol: "176" },
      ]);
      expect(k.ns(T).routes.find((r) => r.table === 20100)).toMatchObject({ dst: "0.0.0.0/0", dev: "gw0", protocol: "176" });
      expect(k.link(T, "gw0")!.wg!.fwmark).toBe(0xb000000);
      expect(k.ns(T).sysctl["net.ipv4.conf.all.src_valid_mark"]).toBe("1");
    },
  });

  describeTransition("create: a node starts using an exit node", {
    kind: "rule",
    before: from(MESH()),
    to: want(USING),
    changes: [
      "create sysctl:net.ipv4.conf.all.src_valid_mark",
      "update wireguard:gw0",
      `update wg-peer:gw0/${EXIT.pub}`,
      "create route:20100/default",
      "create rule:20000",
      "create rule:20001",
      "create nft:inet bolt",
    ],
  });

  describeTransition("delete: the node stops using the exit node", {
    kind: "rule",
    before: from(USING),
    to: want(MESH()),
    after: (k) => {
      expect(k.ns(T).rules.map((r) => r.priority)).toEqual([0, 32766, 32767]);
      expect(k.link(T, "gw0")!.wg!.fwmark).toBe(0);
    },
  });

  // Drift: bolt's rule 20001 now looks up another table. Was a bug (fixed): the update added the
  // new rule next to the drifted one and its undo deleted the first rule of that priority. A
  // table change is now a replace, and a delete names the whole rule (priority, match, table).
  const drifted = async () => {
    const w = await from(USING)();
    w.kernel.ns(T).rules.find((r) => r.priority === 20001)!.table = 100;
    return w;
  };
  describeTransition("replace: a drifted rule's table (a sysctl is written after it)", {
    kind: "rule",
    before: drifted,
    to: want(USING, TTL),
    changes: ["create sysctl:net.ipv4.ip_default_ttl", "replace rule:20001"],
  });
  it("replacing a drifted rule leaves one rule at its priority", async () => {
    const w = await drifted();
    await converge(w, want(USING)());
    expect(w.kernel.ns(T).rules.filter((r) => r.priority === 20001)).toHaveLength(1);
  });

  describeTransition("destroy", {
    kind: "rule",
    before: from(USING),
    to: () => ({ ...want(USING)(), destroy: true }),
    after: (k) => expect(k.snapshot().ns[T]).toEqual(newWorld(T).kernel.snapshot().ns[T]),
  });
});
