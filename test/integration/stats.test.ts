// bolt stats against the kernel: after traffic through an endpoint, its counters are the host
// veth's own (seen from the endpoint), the masqueraded flow shows as a conntrack entry of its
// network, --watch gives rates, and the daemon serves the same as Prometheus metrics.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, ipJson, ping, requireBuild, run } from "./harness.js";
import type { Json } from "./harness.js";
import { Topology, UPLINK, applyConverged } from "./nft-topology.js";
import { freePort, httpGet, metric, waitFor } from "./watch-helpers.js";

const config = `
[networks.front]
subnet = "10.73.0.0/24"

[[endpoints]]
name = "web"
network = "front"
`;

describe.skipIf(!!SKIP_REASON)("bolt stats", () => {
  const topo = new Topology();
  const sb = topo.sb;
  let file: string;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    file = sb.write("stats.toml", config);
    await applyConverged(sb, [file]);
  });
  afterAll(() => topo.cleanup());

  it("counts what crossed the endpoint and the masqueraded flow's conntrack entry", async () => {
    expect(await ping(topo.ns("web"), UPLINK.outside)).toBe(true);
    const r = await sb.bolt(["stats", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    const web = (s.endpoints as Json[]).find((e) => e.name === "web");
    const [host] = (await ipJson(sb.target, ["-s", "link", "show", "dev", "bv-web"])) as Json[];
    // What the endpoint received is what its host side sent (a moment later: at least as much).
    expect(web.rx_bytes).toBeGreaterThan(0);
    expect(web.rx_bytes).toBeLessThanOrEqual(host.stats64.tx.bytes);
    expect(web.tx_bytes).toBeLessThanOrEqual(host.stats64.rx.bytes);
    expect(web.tx_packets).toBeGreaterThanOrEqual(1);
    const front = (s.networks as Json[]).find((n) => n.name === "front");
    expect(front.conntrack).toBeGreaterThanOrEqual(1);
    // Rules with a counter statement (isolation drops here) are listed with the kernel's counts.
    expect((s.rules as Json[]).map((x) => x.key)).toContain("isolation-out");
    const text = await sb.bolt(["stats"]);
    expect(text.stdout).toMatch(/^ENDPOINT\s+NETWORK\s+ADDRESS/m);
    expect(text.stdout).toMatch(/^web\s+front\s+10\.73\.0\.\d+\/24/m);
  });

  it("--watch: per-second rates from consecutive samples", async () => {
    // Echoes every 10 ms for 3 s: traffic through both samples.
    const pings = run(["ip", "netns", "exec", topo.ns("web"), "ping", "-n", "-q", "-i", "0.01", "-c", "300", UPLINK.outside]);
    const r = await sb.bolt(["stats", "--json", "--watch", "1", "--count", "2"]);
    await pings;
    expect(r.code, r.stderr).toBe(0);
    const [a, b] = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(a.endpoints[0].rates).toBeUndefined();
    // ~100 echoes a second of 84 bytes each way: well over a kilobyte a second in both directions.
    expect(b.endpoints[0].rates.tx_bytes_per_s).toBeGreaterThan(1000);
    expect(b.endpoints[0].rates.rx_bytes_per_s).toBeGreaterThan(1000);
    expect(b.time_ms - a.time_ms).toBeGreaterThanOrEqual(1000);
  });

  it("graph --live draws the kernel's topology: bridge, endpoint, its namespace, with traffic", async () => {
    const r = await sb.bolt(["graph", "--live", "--format", "dot"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('"network:front" -> "endpoint:web";');
    expect(r.stdout).toContain(`"endpoint:web" -> "netns:${topo.ns("web")}";`);
    expect(r.stdout).toMatch(/traffic = [\d.]+ (B|KiB) in/);
    const svg = await sb.bolt(["graph", "--live", "--format", "svg"]);
    expect(svg.code, svg.stderr).toBe(0);
    expect(svg.stdout).toMatch(/^<svg [^>]*>/);
    expect(svg.stdout.trim().endsWith("</svg>")).toBe(true);
  });

  it("the daemon serves them as metrics labelled by the config's names", async () => {
    const port = await freePort();
    const daemon = sb.spawnBolt(["watch", "-f", file, "--metrics-listen", `127.0.0.1:${port}`, "--json"]);
    try {
      const body = await waitFor("stats metrics", async () => {
        const m = await httpGet(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
        return m && metric(m.body, "bolt_endpoint_rx_bytes", '{endpoint="web",network="front"}') !== undefined ? m.body : undefined;
      });
      expect(metric(body, "bolt_endpoint_rx_bytes", '{endpoint="web",network="front"}')).toBeGreaterThan(0);
      expect(metric(body, "bolt_network_conntrack_entries", '{network="front"}')).toBeGreaterThanOrEqual(0);
    } finally {
      daemon.kill("SIGTERM");
      await daemon;
    }
  });
});
