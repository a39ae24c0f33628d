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
      ["ip", "netns", "add", "x"],
      ["ip", "netns", "exec", "t", "sysctl", "-w", "a=1"],
      ["ip", "netns", "exec", "t", "tc", "qdisc", "add"],
      ["wireguard-go", "gw0"],
    ])
      expect(writeTopics(a, undefined), a.join(" ")).toBe("all");
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
