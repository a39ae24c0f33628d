// hosts: GhostWire magic DNS, `<hostname>.mesh` for every node, as a block between bolt's
// markers in the hosts file the target resolves with: /etc/netns/NAME/hosts for a namespace
// (created, with its directory, when missing), /etc/hosts for the host itself. Create, update
// (a node joins), delete (magic_dns off), on both kinds of target.
import { describe, expect } from "vitest";
import { converge, describeTransition, intentOf, newWorld, wgKeyPair, writeConfigs, writeKeyFile } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";
import type { Ns } from "../../../src/exec/runner.js";

const T = "bolt-t-kinds";
const self = wgKeyPair();
const KEY = writeKeyFile("gw0.key", self.priv);
const [B, C] = [wgKeyPair(), wgKeyPair()];

const peer = (host: string, pub: string, addr: string) => `
[[peers]]
hostname = "${host}"
public_key = "${pub}"
endpoint = "198.18.0.9:41641"
address = "${addr}"
`;
const MESH = (magic: boolean, peers: string) => `
[ghostwire]
control_server = "static"

[features]
# the fake kernel models IPv4 only: this mesh keeps IPv6 off (mesh-ipv6 tests cover it)
ipv6 = false
magic_dns = ${magic}

[node]
hostname = "host-a"
interface = "gw0"
address = "100.64.0.1"
listen_port = 41641
private_key_file = "${KEY}"
${peers}`;
const ONE = MESH(true, peer("host-b", B.pub, "100.64.0.2"));
const TWO = MESH(true, peer("host-b", B.pub, "100.64.0.2") + peer("host-c", C.pub, "100.64.0.3"));
const OFF = MESH(false, peer("host-b", B.pub, "100.64.0.2"));
// a sysctl changes with the hosts file, so that a failure can come after the file's first write
const ttl = (v: number) => `[sysctl]\n"net.ipv4.ip_default_ttl" = ${v}\n`;

const want = (text: string, boltfile?: string) => (): Desired => ({
  intent: intentOf(writeConfigs({ "ghostwire.toml": text, ...(boltfile ? { "bolt-network.toml": boltfile } : {}) })),
});
const from = (target: Ns, text: string, boltfile?: string) => async () => {
  const w = newWorld(target);
  await converge(w, want(text, boltfile)());
  return w;
};
const HOST_BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
const block = (created: boolean, entries: string[]) =>
  `# BEGIN bolt magic_dns (managed by bolt; edits here are overwritten)${created ? " [file created by bolt]" : ""}\n${entries.join("\n")}\n# END bolt magic_dns\n`;

// Was a bug (fixed): the `mkdir -p /etc/netns/NAME` before a namespace's first hosts file had no
// undo; it now removes the directories it made (checked before, in prepare), innermost first.

describe("hosts in a namespace (/etc/netns/NAME/hosts)", () => {
  describeTransition("create", {
    kind: "hosts",
    before: () => newWorld(T),
    to: want(ONE),
    // run order: wireguard-go, alias, address, mtu up, wg set, peer, route, mkdir, tee.
    after: (k) => expect(k.state.files[`/etc/netns/${T}/hosts`]).toBe(HOST_BASE + block(true, ["100.64.0.1 host-a.mesh", "100.64.0.2 host-b.mesh"])),
  });

  describeTransition("update: a node joins", {
    kind: "hosts",
    before: from(T, ONE, ttl(64)),
    to: want(TWO, ttl(63)),
    after: (k) => expect(k.state.files[`/etc/netns/${T}/hosts`]).toContain("100.64.0.3 host-c.mesh"),
  });

  describeTransition("delete: magic_dns off (the file and directory bolt made go)", {
    kind: "hosts",
    before: from(T, ONE, ttl(64)),
    to: want(OFF, ttl(63)),
    changes: ["delete hosts:magic_dns", "update sysctl:net.ipv4.ip_default_ttl"],
    after: (k) => {
      expect(k.state.files[`/etc/netns/${T}/hosts`]).toBeUndefined();
      expect(k.state.dirs).not.toContain(`/etc/netns/${T}`);
    },
  });
});

describe("hosts of the host itself (/etc/hosts)", () => {
  describeTransition("create (a sysctl is written after the file)", {
    kind: "hosts",
    before: () => newWorld(null),
    to: want(ONE, ttl(63)),
    after: (k) => expect(k.state.files["/etc/hosts"]).toBe(HOST_BASE + block(false, ["100.64.0.1 host-a.mesh", "100.64.0.2 host-b.mesh"])),
  });

  describeTransition("update: a node joins", {
    kind: "hosts",
    before: from(null, ONE, ttl(64)),
    to: want(TWO, ttl(63)),
  });

  describeTransition("delete: magic_dns off (the rest of /etc/hosts stays)", {
    kind: "hosts",
    before: from(null, ONE, ttl(64)),
    to: want(OFF, ttl(63)),
    after: (k) => expect(k.state.files["/etc/hosts"]).toBe(HOST_BASE),
  });
});
