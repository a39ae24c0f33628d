// bolt stats from recorded kernel output: the endpoint's view of its host-side veth, conntrack
// entries per network by original source (both families), WireGuard handshake age, rates
// between two samples, and the Grafana dashboard naming only metrics the daemon serves.
import { readFileSync } from "node:fs";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { buildStats, conntrackSources, renderStats, withRates } from "../../src/core/stats.js";
import type { LinkStats, StatsInput } from "../../src/core/stats.js";
import type { Resource } from "../../src/core/resource.js";
import { registerStatsMetrics } from "../../src/watch/stats-metrics.js";
import { WatchMetrics } from "../../src/watch/metrics.js";
import { sampleStats } from "../../src/cli/cmd-stats.js";
import { converge, intentOf, newWorld, writeConfigs } from "./helpers/pipeline.js";

const res = (kind: string, name: string, spec: Record<string, string>): Resource => ({
  kind,
  name,
  id: `${kind}:${name}`,
  keys: [],
  spec,
  deps: [],
  owned: true,
});
const link = (ifname: string, rx: number, tx: number): LinkStats => ({
  ifname,
  stats64: { rx: { bytes: rx, packets: rx / 100, errors: 0, dropped: 1 }, tx: { bytes: tx, packets: tx / 100, errors: 0, dropped: 0 } },
});

const CONNTRACK = [
  "ipv4     2 icmp     1 29 src=10.71.0.10 dst=198.51.100.2 type=8 code=0 id=7 src=198.51.100.2 dst=198.51.100.1 type=0 code=0 id=7 mark=0 zone=0 use=2",
  "ipv4     2 tcp      6 431999 ESTABLISHED src=10.72.0.5 dst=10.72.0.1 sport=1 dport=2 src=10.72.0.1 dst=10.72.0.5 sport=2 dport=1 [ASSURED] mark=0 zone=0 use=2",
  "ipv6     10 icmpv6   58 29 src=fd71:0000:0000:0000:0000:0000:0000:0010 dst=2001:0db8:0051:0000:0000:0000:0000:0002 type=128 code=0 id=9 src=2001:0db8:0051:0000:0000:0000:0000:0002 dst=2001:0db8:0051:0000:0000:0000:0000:0001 type=129 code=0 id=9 mark=0 zone=0 use=2",
  "ipv4     2 udp      17 20 src=192.0.2.9 dst=192.0.2.1 sport=5 dport=53 src=192.0.2.1 dst=192.0.2.9 sport=53 dport=5 mark=0 zone=0 use=2",
].join("\n");

const input = (t: number, webTx: number): StatsInput => ({
  target: "bolt-t-x",
  timeMs: t,
  owned: [
    res("network", "front", { bridge: "bolt-front", address: "10.71.0.1/24, fd71::1/64" }),
    res("network", "back", { bridge: "bolt-back", address: "10.72.0.1/24" }),
    res("endpoint", "web", { host_if: "bv-web", network: "front", ip: "10.71.0.10/24", ip6: "fd71::10/64" }),
    res("nft", "inet bolt", {}),
  ],
  links: [link("bolt-front", 1000, 2000), link("bolt-back", 0, 100), link("bv-web", 500, webTx)],
  dumps: new Map([
    [
      "wg0",
      {
        peers: [
          { publicKey: "A".repeat(43) + "=", endpoint: "192.0.2.7:51820", latestHandshake: t / 1000 - 42, rx: 10, tx: 20 },
          { publicKey: "B".repeat(43) + "=", endpoint: "", latestHandshake: 0, rx: 0, tx: 0 },
        ],
      },
    ],
  ]),
  ruleCounters: { "forward isolation-out": "3 packets, 180 bytes", "nat_post masquerade": "0 packets, 0 bytes" },
  conntrack: CONNTRACK,
});

describe("bolt stats", () => {
  it("conntrack: the original source of each entry", () => {
    expect(conntrackSources(CONNTRACK)).toEqual(["10.71.0.10", "10.72.0.5", "fd71:0000:0000:0000:0000:0000:0000:0010", "192.0.2.9"]);
  });

  it("builds one row per owned object from the kernel's counters", () => {
    const s = buildStats(input(1_000_000, 3000));
    expect(s.networks.map((n) => [n.name, n.rx_bytes, n.tx_bytes, n.conntrack])).toEqual([
      ["back", 0, 100, 1],
      ["front", 1000, 2000, 2],
    ]);
    // The host side sends what the endpoint receives.
    expect(s.endpoints[0]).toMatchObject({ name: "web", rx_bytes: 3000, tx_bytes: 500, ip: "10.71.0.10/24, fd71::10/64", tx_dropped: 1 });
    expect(s.peers.map((p) => p.handshake_age_s)).toEqual([42, null]);
    expect(s.rules).toEqual([
      { chain: "forward", key: "isolation-out", packets: 3, bytes: 180 },
      { chain: "nat_post", key: "masquerade", packets: 0, bytes: 0 },
    ]);
    expect(s.conntrack_total).toBe(4);
  });

  it("rates between two samples; a counter that went back (a recreated link) counts from zero", () => {
    const a = buildStats(input(1_000_000, 3000));
    const b = buildStats(input(1_002_000, 7000));
    const r = withRates(a, b);
    expect(r.endpoints[0]!.rates).toMatchObject({ rx_bytes_per_s: 2000, tx_bytes_per_s: 0 });
    const back = withRates(b, buildStats(input(1_004_000, 1000)));
    expect(back.endpoints[0]!.rates!.rx_bytes_per_s).toBe(500);
  });

  it("renders tables with only the rules that counted something", () => {
    const text = renderStats(withRates(buildStats(input(1_000_000, 3000)), buildStats(input(1_001_000, 4024))));
    expect(text).toContain("web       front    10.71.0.10/24, fd71::10/64  3.9 KiB  500 B  1.0 KiB/s  0 B/s  1");
    expect(text).toContain("42s ago");
    expect(text).toContain("never");
    expect(text).toContain("isolation-out");
    expect(text).not.toContain("masquerade");
    expect(text).toContain("conntrack entries: 4");
  });

  it("serves them as metrics with the config's names as labels", async () => {
    const registry = new Registry();
    registerStatsMetrics(registry, async () => buildStats(input(Date.now(), 3000)));
    const text = await registry.metrics();
    expect(text).toContain('bolt_endpoint_rx_bytes{endpoint="web",network="front"} 3000');
    expect(text).toContain('bolt_network_conntrack_entries{network="front"} 2');
    expect(text).toMatch(/bolt_wireguard_peer_handshake_age_seconds\{interface="wg0",peer="A+="\} 4[12]/);
  });

  it("the example Grafana dashboard names only metrics the daemon serves", async () => {
    const w = new WatchMetrics();
    registerStatsMetrics(w.registry, async () => buildStats(input(Date.now(), 1)));
    const served = new Set((await w.registry.getMetricsAsJSON()).map((m) => m.name));
    const dash = JSON.parse(readFileSync(new URL("../../examples/grafana/bolt-dashboard.json", import.meta.url), "utf8"));
    const names = (dash.panels as { targets: { expr: string }[] }[]).flatMap((p) => p.targets.flatMap((t) => t.expr.match(/bolt_[a-z_]+/g) ?? []));
    expect(names.length).toBeGreaterThan(8);
    expect(names.filter((n) => !served.has(n))).toEqual([]);
  });
});

describe("bolt graph --live", () => {
  it("adds live state, traffic and each endpoint's namespace; renders a self-contained SVG", async () => {
    const { liveGraph, renderSvg, renderDot } = await import("../../src/cli/render-graph.js");
    const owned: Resource[] = [
      { ...res("network", "front", { bridge: "bolt-front", address: "10.71.0.1/24", state: "up" }) },
      { ...res("endpoint", "web", { host_if: "bv-web", network: "front", ip: "10.71.0.10/24", netns: "ns-web", state: "down" }), deps: ["network:front"] },
    ];
    const s = withRates(buildStats(input(1_000_000, 3000)), buildStats(input(1_001_000, 4024)));
    const g = liveGraph(owned, s);
    expect(g.nodes.map((n) => n.id)).toEqual(["network:front", "endpoint:web", "netns:ns-web"]);
    expect(g.edges).toEqual([
      ["network:front", "endpoint:web"],
      ["endpoint:web", "netns:ns-web"],
    ]);
    const web = g.nodes.find((n) => n.id === "endpoint:web")!;
    expect(web.label).toContain("state = down");
    expect(web.label).toContain("traffic = 3.9 KiB in, 500 B out (1.0 KiB/s in, 0 B/s out)");
    expect(renderDot(g)).toContain('"endpoint:web" -> "netns:ns-web";');
    const svg = renderSvg(g);
    expect(svg.startsWith("<svg ")).toBe(true);
    // Three boxes in three columns (dependency depth), two arrows, every tag closed.
    expect(svg.match(/<rect /g)).toHaveLength(3);
    expect(new Set([...svg.matchAll(/<rect x="([\d.]+)"/g)].map((m) => m[1])).size).toBe(3);
    expect(svg.match(/<line /g)).toHaveLength(2);
    expect(svg.match(/<g>/g)?.length).toBe(svg.match(/<\/g>/g)?.length);
    expect(svg).toContain("&quot;web&quot;");
  });
});

// `bolt stats` (and the daemon's /metrics) reads what the target holds: on a host with many
// other namespaces it must not enter each one looking for bolt's leftovers, as destroy does.
describe("stats reads only the target", () => {
  it("never enters a namespace its endpoints do not use", async () => {
    const T = "bolt-t-st";
    const w = newWorld(T, (k) => void k.addNetns("someone-else").addNetns("bolt-t-st-stale"));
    const files = writeConfigs({ "bolt-network.toml": '[networks.front]\nsubnet = "10.71.0.0/24"\n\n[[endpoints]]\nname = "web"\nnetwork = "front"\n' });
    await converge(w, { intent: intentOf(files, { netnsPrefix: `${T}-` }) });
    const ran: string[][] = [];
    // (the fake kernel keeps no counters: `ip -s link` is answered as `ip link`)
    const runner = {
      run: (argv: string[], stdin?: string) => (
        ran.push(argv),
        w.kernel.run(
          argv.filter((a) => a !== "-s"),
          stdin,
        )
      ),
    };
    const s = await sampleStats(runner, T, new Map(), false);
    expect(s.endpoints.map((e) => e.name)).toEqual(["web"]);
    const entered = ran.filter((a) => a.includes("someone-else") || a.includes("bolt-t-st-stale"));
    expect(entered).toEqual([]);
  });
});
