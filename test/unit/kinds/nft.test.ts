// nft: bolt's one table `inet bolt`, replaced in one `nft -f -` transaction, checked with
// `nft -c`; the undo restores the table text `nft -s list table` gave before (or deletes it).
// Create, update, delete, destroy; the ops after the table (DOCKER-USER, sysctl) make its undo count.
import { describe, expect } from "vitest";
import { converge, describeTransition, intentOf, newWorld, writeConfigs } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";
const A = `
[networks.front]
subnet = "10.71.0.0/24"

[[endpoints]]
name = "web"
network = "front"
ip = "10.71.0.10"

[[port_forwards]]
host_port = 8080
to = "web:80"

[[firewall.rules]]
name = "no-telnet"
action = "deny"
protocol = "tcp"
dest_ports = 23
`;
// every part of the table changes: rule text, a new rule, a new port, DDoS sets and chains
const B =
  A.replace("dest_ports = 23", 'dest_ports = "23-25"\nlogging = true').replace("host_port = 8080", "host_port = 9090") +
  `
[[firewall.rules]]
name = "icmp-budget"
action = "allow"
protocol = "icmp"
rate_limit = { packets_per_second = 5 }

[firewall.ddos]
syn_flood_protection = true

[sysctl]
"net.ipv4.ip_default_ttl" = 63
`;
// only firewall rules: a table without any network; a sysctl is written after it
const RULES_ONLY = `
[[firewall.rules]]
name = "no-telnet"
action = "deny"
protocol = "tcp"
dest_ports = 23

[sysctl]
"net.ipv4.ip_default_ttl" = 63
`;

const want = (text: string) => (): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text }), { netnsPrefix: `${T}-` }) });
const from = (text: string) => async () => {
  const w = newWorld(T);
  await converge(w, want(text)());
  return w;
};

describe("nft", () => {
  describeTransition("create: networks, port forward, firewall rule", {
    kind: "nft",
    before: () => newWorld(T),
    to: want(A),
    after: (k) => {
      const t = k.nftTable(T, "inet", "bolt")!;
      expect(t.chains.map((c) => c.name)).toEqual(["input", "forward", "firewall", "nat_pre", "nat_out", "nat_post"]);
      expect(t.chains.find((c) => c.name === "nat_pre")!.rules.map((r) => r.text)).toEqual(["fib daddr type local tcp dport 8080 dnat ip to 10.71.0.10:80"]);
    },
  });

  describeTransition("create: firewall rules only", {
    kind: "nft",
    before: () => newWorld(T),
    to: want(RULES_ONLY),
    changes: ["create sysctl:net.ipv4.ip_default_ttl", "create nft:inet bolt"],
  });

  describeTransition("update: every part of the table", {
    kind: "nft",
    before: from(A),
    to: want(B),
    changes: ["create sysctl:net.ipv4.ip_default_ttl", "update nft:inet bolt"],
    after: (k) => expect(k.nftTable(T, "inet", "bolt")!.chains.map((c) => c.name)).toContain("ddos"),
  });

  describeTransition("update: a rule, then a sysctl written after the table", {
    kind: "nft",
    before: from(RULES_ONLY),
    to: want(RULES_ONLY.replace("dest_ports = 23", "dest_ports = 24").replace("63", "62")),
    changes: ["update sysctl:net.ipv4.ip_default_ttl", "update nft:inet bolt"],
  });

  describeTransition("delete: nothing needs the table any more", {
    kind: "nft",
    before: from(RULES_ONLY),
    to: want('[sysctl]\n"net.ipv4.ip_default_ttl" = 62\n'),
    changes: ["delete nft:inet bolt", "update sysctl:net.ipv4.ip_default_ttl"],
    after: (k) => expect(k.nftTable(T, "inet", "bolt")).toBeUndefined(),
  });

  describeTransition("destroy", {
    kind: "nft",
    before: from(A),
    to: () => ({ ...want(A)(), destroy: true }),
    after: (k) => expect(k.ns(T).nft).toEqual([]),
  });
});
