// What the daemon's cached reads are about, what a write may change, and what `ip monitor label` says.
import { describe, expect, it } from "vitest";
import { MonitorLines, readTopics, writeTopics } from "../../src/exec/read-topics.js";

const set = (t: ReturnType<typeof readTopics>) => (t === "all" ? "all" : [...t].sort());

describe("read topics", () => {
  it("reads", () => {
    expect(set(readTopics(["ip", "-n", "t", "-j", "-d", "link", "show"], undefined))).toEqual(["link"]);
    expect(set(readTopics(["ip", "-n", "t", "-j", "addr", "show"], undefined))).toEqual(["addr", "link"]);
    expect(set(readTopics(["ip", "-n", "t", "-j", "-force", "-batch", "-"], "route get 1.2.3.4 mark 0x1\n"))).toEqual(["addr", "link", "route"]);
    expect(set(readTopics(["ip", "-n", "t", "-j", "-6", "rule", "show"], undefined))).toEqual(["rule"]);
    expect(set(readTopics(["ip", "-j", "netns", "list"], undefined))).toEqual(["files"]);
    expect(set(readTopics(["ip", "netns", "exec", "t", "iptables-save", "-t", "filter"], undefined))).toEqual(["nft"]);
    expect(set(readTopics(["find", "/etc/netns", "-type", "f"], undefined))).toEqual(["files"]);
    expect(readTopics(["ip", "-n", "t", "-j", "-batch", "-"], "neigh show\n")).toBe("all");
  });

  it("writes", () => {
    expect(set(writeTopics(["nsenter", "--net=/run/netns/t", "--", "wg", "set", "gw0", "peer", "K", "remove"], undefined))).toEqual([]);
    expect(set(writeTopics(["ip", "-n", "t", "-batch", "-"], "route replace 100.64.0.2/32 dev gw0\nroute del 100.64.0.3/32 dev gw0\n"))).toEqual(["route"]);
    expect(set(writeTopics(["ip", "-n", "t", "-batch", "-"], "addr add 10.0.0.1/24 dev b0\n"))).toEqual(["addr", "route"]);
    expect(set(writeTopics(["ip", "-n", "t", "link", "del", "b0"], undefined))).toEqual(["addr", "link", "route"]);
    expect(set(writeTopics(["ip", "netns", "exec", "t", "nft", "-f", "-"], undefined))).toEqual(["nft"]);
    for (const a of [
      ["ip", "netns", "exec", "t", "sysctl", "-w", "a=1"],
      ["ip", "netns", "exec", "t", "tc", "qdisc", "add"],
      ["wireguard-go", "gw0"],
    ])
      expect(writeTopics(a, undefined), a.join(" ")).toBe("all");
  });

  it("writes in another namespace than the target's reach it through links only; namespaces made and deleted", () => {
    // an endpoint's own namespace: its addresses, routes, sysctls and daemons are not the target's
    expect(set(writeTopics(["ip", "-n", "ep", "-batch", "-"], "address add 10.0.0.5/24 dev eth0\nroute add default via 10.0.0.1\n", "t"))).toEqual([]);
    expect(set(writeTopics(["ip", "netns", "exec", "ep", "sysctl", "-w", "net.ipv6.conf.all.disable_ipv6=1"], undefined, "t"))).toEqual([]);
    expect(set(writeTopics(["ip", "netns", "exec", "ep", "wireguard-go", "gw0"], undefined, "t"))).toEqual([]);
    // its eth0 is the peer of a veth in the target: deleting it deletes that one
    expect(set(writeTopics(["ip", "-n", "ep", "link", "del", "eth0"], undefined, "t"))).toEqual(["addr", "link", "route"]);
    // the same writes in the target itself
    expect(set(writeTopics(["ip", "-n", "t", "-batch", "-"], "address add 10.0.0.5/24 dev b0\n", "t"))).toEqual(["addr", "route"]);
    expect(writeTopics(["ip", "netns", "exec", "t", "sysctl", "-w", "a=1"], undefined, "t")).toBe("all");
    // a new namespace is a name in the list; one deleted takes the veths it held; the target itself is everything
    expect(set(writeTopics(["ip", "-batch", "-"], "netns add ep\n", "t"))).toEqual(["files"]);
    expect(set(writeTopics(["ip", "netns", "add", "ep"], undefined, "t"))).toEqual(["files"]);
    expect(set(writeTopics(["ip", "netns", "del", "ep"], undefined, "t"))).toEqual(["addr", "files", "link", "route"]);
    expect(writeTopics(["ip", "netns", "add", "t"], undefined, "t")).toBe("all");
    expect(writeTopics(["ip", "netns", "set", "ep", "5"], undefined, "t")).toBe("all");
    // nsenter enters by path: not known to be elsewhere
    expect(writeTopics(["nsenter", "--net=/run/netns/ep", "--", "sysctl", "-w", "a=1"], undefined, "t")).toBe("all");
  });
});

describe("ip monitor label", () => {
  it("tags each event; continuation lines and lines split between chunks are fine; an unlabelled line is everything", () => {
    const m = new MonitorLines();
    expect(set(m.topics("[ROUTE]10.10.0.0/16 dev b0 scope link \n[LI"))).toEqual(["route"]);
    expect(set(m.topics("NK]2: b0: <UP> mtu 1500\n    link/ether c2:52\n"))).toEqual(["link"]);
    expect(set(m.topics("[ADDR]2: b0    inet 10.9.9.1/24 scope global b0\n       valid_lft forever\n[RULE]100:\tfrom all lookup 5\n"))).toEqual([
      "addr",
      "rule",
    ]);
    expect(m.topics("Deleted 10.0.0.0/8 dev x\n")).toBe("all");
  });
});
