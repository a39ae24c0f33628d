// Traffic control: tc's rate printing, the recorded `tc` reads, the classes a tree gets, the
// nft rules a [[traffic.rules]] becomes, and config errors at file:line:col.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configFiles } from "./helpers/config-at.js";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import { parseRate, tcRate } from "../../reconcilers/tc/rate.js";
import { parseHtbClasses, redirectTarget, splitBatchAnswer, splitClassDumps } from "../../reconcilers/tc/read.js";
import type { TcFilter, TcQdisc } from "../../reconcilers/tc/read.js";
import { TRAFFIC } from "../../reconcilers/tc/intent.js";
import { tcReconciler } from "../../reconcilers/tc/index.js";
import { trafficRules } from "../../reconcilers/nft/traffic.js";

const FIX = join(__dirname, "../../fixtures/tc/iproute2-6.1");
const { dir, load, errorAt } = configFiles("t");
const NET = '[networks.games]\nsubnet = "10.78.0.0/24"\n\n[[endpoints]]\nname = "srv"\nnetwork = "games"\nip = "10.78.0.10"\n';

describe("tc rates", () => {
  it("parse to bytes/s and print exactly as tc class show does (iproute2 print_rate)", () => {
    expect(parseRate("100mbit")).toBe(12_500_000);
    expect(parseRate("1kbps")).toBe(1000);
    expect(parseRate("1.5Mbit")).toBe(187_500);
    expect(parseRate("4bit")).toBeUndefined();
    expect(parseRate("10 mbit")).toBeUndefined();
    // Recorded from `tc class show` after `class replace … rate R`.
    const seen: [string, string][] = [
      ["1234567bit", "1234Kbit"],
      ["2.5mbit", "2500Kbit"],
      ["1500kbit", "1500Kbit"],
      ["100kbps", "800Kbit"],
      ["1gbit", "1Gbit"],
      ["999bit", "992bit"],
      ["12345678bit", "12345Kbit"],
      ["10mbit", "10Mbit"],
    ];
    for (const [given, printed] of seen) expect(tcRate(parseRate(given)!), given).toBe(printed);
  });
});

describe("tc reads", () => {
  it("qdiscs, HTB classes with counters and the ifb redirect from one recorded batch", () => {
    const qdiscs = JSON.parse(readFileSync(join(FIX, "qdisc-show.json"), "utf8")) as TcQdisc[];
    expect(qdiscs.filter((q) => q.root && q.handle === "b017:").map((q) => q.dev)).toEqual(expect.arrayContaining(["bv-srv", "ifb-bv-srv"]));
    // class show dev bv-srv classid b017:1 + class show dev bv-srv, the same for ifb-bv-srv, filter show.
    const answers = splitBatchAnswer(`[]\n${readFileSync(join(FIX, "read-batch.txt"), "utf8")}`);
    expect(answers).toHaveLength(2);
    const perDev = splitClassDumps(answers[0]!.text, 2)!;
    const classes = perDev[0]!.sort((a, b) => a.minor - b.minor);
    expect(classes.map((c) => [c.minor, c.prio, c.rate, c.ceil])).toEqual([
      [1, 0, "20Mbit", "20Mbit"],
      [2, 2, "9500Kbit", "20Mbit"],
      [0x10, 0, "9500Kbit", "20Mbit"],
      [0x11, 1, "1Mbit", "20Mbit"],
    ]);
    expect(perDev[1]!.map((c) => [c.minor, c.rate]).sort()).toEqual([
      [1, "10Mbit"],
      [2, "10Mbit"],
    ]);
    // A tree without its root class leaves the markers short: the caller reads device by device.
    expect(splitClassDumps(answers[0]!.text, 3)).toBeUndefined();
    expect(classes[0]!.bytes).toBeGreaterThan(0);
    expect(redirectTarget(answers[1]!.json as TcFilter[])).toBe("ifb-bv-srv");
    expect(redirectTarget([])).toBeUndefined();
  });

  it("classes of another major are not bolt's", () => {
    const text = "class htb 1:1 root rate 10Mbit ceil 10Mbit burst 1600b cburst 1600b \n Sent 5 bytes 1 pkt (dropped 0, overlimits 0 requeues 0) \n";
    expect(parseHtbClasses(text)).toEqual([]);
  });
});

describe("tc desired state", () => {
  const desired = (text: string) => {
    const { intent } = load(text);
    return tcReconciler.desired({
      target: "ns",
      intent,
      live: new Map(),
      leases: new Map(),
      netns: new Set(),
      facts: new Map([["tc.fq_codel", "no"]]),
      desired: [],
      prepared: new Map(),
    });
  };

  it("an endpoint's ingress is a tree on its host-side veth, its egress an ifb fed by a clsact redirect; rules share what rates leave", () => {
    const { resources, diagnostics } = desired(
      `${NET}bandwidth = { ingress = "10mbit", egress = "5mbit" }\n\n[[traffic.rules]]\npattern = "udp:27015"\npriority = "critical"\n\n[[traffic.rules]]\nprotocol = "icmp"\nrate = "1mbit"\n`,
    );
    expect(Object.fromEntries(resources.map((r) => [r.id, r.spec]))).toEqual({
      "tc:htb/bv-srv": {
        rate: "10Mbit",
        classes: "b017:2 prio 2 rate 4500Kbit ceil 10Mbit, b017:10 prio 0 rate 4500Kbit ceil 10Mbit, b017:11 prio 2 rate 1Mbit ceil 10Mbit",
        leaf: "pfifo limit 1000",
      },
      "tc:htb/ifb-bv-srv": { rate: "5Mbit", classes: "b017:2 prio 2 rate 5Mbit ceil 5Mbit", leaf: "pfifo limit 1000" },
      "tc:ifb/bv-srv": { ifb: "ifb-bv-srv", state: "up", redirect: "bv-srv ingress" },
      "tc:clsact/bv-srv": {},
    });
    expect(diagnostics.map((d) => d.message)).toEqual([expect.stringMatching(/fq_codel is not in this kernel/)]);
  });

  it("a tc-attached eBPF program's device gets a clsact from the tc kind (one kind owns the qdisc), an XDP one does not", () => {
    writeFileSync(join(dir, "f.c"), "int f(void *ctx) { return 0; }\n");
    const prog = (name: string, iface: string, attach: string) =>
      `[[ebpf.programs]]\nname = "${name}"\ninterface = "${iface}"\nsource = "${join(dir, "f.c")}"\nattach = "${attach}"\n`;
    const { resources } = desired(`${NET}\n${prog("a", "up0", "tc-ingress")}\n${prog("b", "up1", "xdp")}`);
    expect(resources.map((r) => r.id)).toEqual(["tc:clsact/up0"]);
  });

  it("enable_gaming_optimizations expands into visible rules: the game ports in the gaming class with DSCP EF", () => {
    const { intent } = load(`[networking]\nenable_gaming_optimizations = true\n\n${NET}bandwidth = "20mbit"\n`);
    const t = fragment(intent, TRAFFIC);
    expect(t.rules.map((r) => [r.label, r.priority, r.setDscp, r.preset])).toEqual([
      ["udp:27015-27030", "gaming", 46, "enable_gaming_optimizations (gaming-source-engine)"],
      ["udp:7777-7784", "gaming", 46, "enable_gaming_optimizations (gaming-unreal)"],
      ["tcp:25565-25565", "gaming", 46, "enable_gaming_optimizations (gaming-minecraft)"],
    ]);
  });
});

describe("traffic rules in nft", () => {
  it("ports both ways, addresses per family, DSCP per family, first match returns", () => {
    const { intent } = load(
      `${NET}\n[[traffic.rules]]\npattern = "port:7777-7784"\n\n[[traffic.rules]]\nendpoint = "srv"\nprotocol = "tcp"\nports = 443\nset_dscp = "af41"\n\n[[traffic.rules]]\nmatch_dscp = "ef"\npriority = "critical"\n`,
    );
    const rules = trafficRules(fragment(intent, TRAFFIC).rules, new Map([["srv", 0x0a4e000a]]), new Map());
    expect(rules.map((r) => `${r.key}: ${r.text}`)).toEqual([
      "traffic:0:to: meta l4proto { tcp, udp } th dport 7777-7784 meta priority set b017:10 return",
      "traffic:0:from: meta l4proto { tcp, udp } th sport 7777-7784 meta priority set b017:10 return",
      "traffic:1:to/4: ip daddr 10.78.0.10 tcp dport 443 meta priority set b017:11 ip dscp set 34 return",
      "traffic:1:from/4: ip saddr 10.78.0.10 tcp sport 443 meta priority set b017:11 ip dscp set 34 return",
      "traffic:2/4: meta nfproto ipv4 ip dscp 46 meta priority set b017:12 return",
      "traffic:2/6: meta nfproto ipv6 ip6 dscp 46 meta priority set b017:12 return",
    ]);
  });
});

describe("traffic config errors", () => {
  const rule = (body: string) => `${NET}bandwidth = "10mbit"\n\n[[traffic.rules]]\n${body}\n`;
  it("rate above ceil, above the link, unknown pattern kinds, contradictions, references, nothing to match", () => {
    errorAt(rule('pattern = "udp:1"\nrate = "5mbit"\nbandwidth_limit = "1mbit"'), '"5mbit"', /rate 5Mbit is above its bandwidth_limit 1Mbit/);
    errorAt(
      rule('pattern = "udp:1"\nrate = "50mbit"'),
      '[[traffic.rules]]\npattern = "udp:1"',
      /rate 50Mbit is above endpoint "srv" bandwidth \(ingress\)'s 10Mbit/,
    );
    errorAt(rule('pattern = "dns:53"'), '"dns:53"', /unknown kind "dns"/);
    errorAt(rule('pattern = "udp:70000"'), '"udp:70000"', /is not a port or a range/);
    errorAt(rule('pattern = "udp:53"\nprotocol = "tcp"'), '"tcp"', /contradicts pattern/);
    errorAt(rule('pattern = "network:nope"'), '"network:nope"', /no network "nope"/);
    errorAt(rule('protocol = "icmp"\nports = 5'), "5\n", /ICMP has no ports/);
    errorAt(rule('priority = "bulk"'), "[[traffic.rules]]", /matches nothing/);
  });

  it("one device shaped twice, a bad interface name", () => {
    errorAt(
      `${NET}bandwidth = "10mbit"\n\n[[traffic.interfaces]]\nname = "bv-srv"\nrate = "1gbit"\n`,
      "[[traffic.interfaces]]",
      /bv-srv's egress is already shaped by endpoint "srv" bandwidth \(ingress\)/,
    );
    errorAt(`${NET}\n[[traffic.interfaces]]\nname = "a-very-long-interface"\nrate = "1gbit"\n`, '"a-very-long-interface"', /at most 15/);
  });

  it("the seed's steam_appid pattern is accepted, not enforced, and said", () => {
    const { warnings } = load(rule('pattern = "steam_appid:730"'));
    expect(warnings.map((w) => w.message)).toContainEqual(expect.stringMatching(/accepted, not enforced: traffic rule pattern "steam_appid:730"/));
  });
});
