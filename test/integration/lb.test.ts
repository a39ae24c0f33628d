// Load balancers proven by traffic: a VIP the outside routes to the host, three backend
// endpoints each answering with its own name; round_robin spreads new connections evenly,
// source_hash keeps one client on one backend, weights shift the share; reachable from the
// outside, from the host itself and from an endpoint on another (isolated) network; a backend
// recorded as down leaves the map; re-plan empty after every apply; destroy leaves no trace.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SKIP_REASON, must, requireBuild } from "./harness.js";
import { waitFor } from "./watch-helpers.js";
import { Topology, UPLINK, applyConverged, boltTable, destroyClean } from "./nft-topology.js";

const VIP = "203.0.113.10";

const config = (o: { algorithm?: string; weights?: number[]; extra?: string } = {}) => `
[networks.back]
subnet = "10.74.0.0/24"

[networks.front]
subnet = "10.75.0.0/24"

${["be1", "be2", "be3"].map((n, i) => `[[endpoints]]\nname = "${n}"\nnetwork = "back"\nip = "10.74.0.${11 + i}"\n`).join("\n")}
[[endpoints]]
name = "client"
network = "front"

[[load_balancers]]
name = "web"
listen = "${VIP}:80"
algorithm = "${o.algorithm ?? "round_robin"}"
${["be1", "be2", "be3"].map((n, i) => `[[load_balancers.backends]]\nendpoint = "${n}"\nport = 8080\n${o.weights ? `weight = ${o.weights[i]}\n` : ""}`).join("\n")}
${o.extra ?? ""}`;

describe.skipIf(!!SKIP_REASON)("load balancers (nft numgen/jhash verdict maps)", () => {
  const topo = new Topology();
  const sb = topo.sb;
  // The daemon's runtime files (socket, health verdicts) in a dir of this test's, not /run/bolt.
  const runDir = mkdtempSync(join(tmpdir(), "bolt-lb-run-"));
  const hits = async (from: string, n: number) => {
    const out: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const b = (await topo.tcp(from, VIP, 80)) ?? "none";
      out[b] = (out[b] ?? 0) + 1;
    }
    return out;
  };

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    // The outside routes the VIP to the host (as an upstream router would).
    await must(["ip", "-n", topo.outside, "route", "add", `${VIP}/32`, "via", UPLINK.host]);
    await applyConverged(sb, [sb.write("lb.toml", config())]);
    for (const n of ["be1", "be2", "be3"]) await topo.serveTcp(topo.ns(n), 8080, n);
  });
  afterAll(() => topo.cleanup());

  it("round_robin: nine connections from the outside, three to each backend", async () => {
    expect(await hits(topo.outside, 9)).toEqual({ be1: 3, be2: 3, be3: 3 });
  });

  it("reachable from the host itself and from an endpoint on another isolated network", async () => {
    expect(["be1", "be2", "be3"]).toContain(await topo.tcp(topo.host, VIP, 80));
    expect(["be1", "be2", "be3"]).toContain(await topo.tcp(topo.ns("client"), VIP, 80));
    // Isolation still holds for everything that is not the balanced flow.
    expect(await topo.noReply(topo.ns("client"), "10.74.0.11")).toBe(true);
  });

  it("source_hash: one client always lands on the same backend; weights shift the share", async () => {
    await applyConverged(sb, [sb.write("sh.toml", config({ algorithm: "source_hash" }))]);
    const h = await hits(topo.outside, 6);
    expect(Object.keys(h)).toHaveLength(1);
    await applyConverged(sb, [sb.write("w.toml", config({ weights: [200, 100, 100] }))]);
    // weights 2:1:1 → numgen inc mod 4: be1 twice per round of four.
    expect(await hits(topo.outside, 8)).toEqual({ be1: 4, be2: 2, be3: 2 });
  });

  it("health checks in the daemon: a dead backend leaves the map within fall × interval, and returns when it answers again", async () => {
    const hc = '[load_balancers.health_check]\nmethod = "tcp"\ninterval = "500ms"\ntimeout = "200ms"\nfall = 2\nrise = 2\n';
    const file = sb.write("hc.toml", config({ extra: hc }));
    await applyConverged(sb, [file]);
    const env = { BOLT_RUN_DIR: runDir };
    const health = async () => {
      const r = await sb.bolt(["show", "--json", "--no-daemon"], { env });
      expect(r.code, r.stderr).toBe(0);
      const nft = (JSON.parse(r.stdout).resources as { kind: string; counters?: Record<string, string> }[]).find((x) => x.kind === "nft")!;
      return Object.fromEntries(["be1", "be2", "be3"].map((b) => [b, nft.counters?.[`forward lb:web:${b}:8080`]]));
    };
    // No daemon has probed anything yet: every backend is in the map, unchecked.
    expect((await health()).be2).toBe("backend web/be2:8080 not checked (in the map; health checks run in bolt watch)");
    const daemon = sb.spawnBolt(["watch", "-f", file, "--json"], { env });
    try {
      await waitFor("the daemon's first pass", async () => (await topo.tcp(topo.outside, VIP, 80)) !== undefined, 15_000);
      await topo.stopServer(topo.ns("be2"), 8080);
      const t0 = Date.now();
      // Gone from the map: every connection lands on be1 or be3.
      await waitFor(
        "be2 out of the map",
        async () => {
          const h = await hits(topo.outside, 6);
          return !h.none && !h.be2 ? h : undefined;
        },
        15_000,
      );
      const took = Date.now() - t0;
      expect(took, "removed within a few probe rounds and one pass").toBeLessThan(10_000);
      const table = (await boltTable(topo.host))!;
      expect(table).toContain("numgen inc mod 2");
      // bolt show: each backend's verdict from the daemon's runtime file, text and JSON.
      const h = await health();
      expect(h.be2).toMatch(/^backend web\/be2:8080 down since \d{4}-\d\d-\d\dT/);
      expect(h.be1).toMatch(/^backend web\/be1:8080 up since /);
      const text = await sb.bolt(["show", "--no-daemon"], { env });
      expect(text.stdout).toMatch(/forward lb:web:be2:8080 = \S+ {2}\[backend web\/be2:8080 down since /);
      // The CLI plans against the same health: nothing to do while be2 is down.
      const p = await sb.bolt(["plan", "-f", file, "--detailed-exitcode", "--no-daemon"], { env: { BOLT_RUN_DIR: runDir } });
      expect(p.code, p.stdout).toBe(0);
      await topo.serveTcp(topo.ns("be2"), 8080, "be2");
      await waitFor("be2 back in the map", async () => ((await hits(topo.outside, 3)).be2 ? true : undefined), 15_000);
      expect((await health()).be2).toMatch(/^backend web\/be2:8080 up since /);
      // A second flip each way: health passes are bolt's own changes, not drift, so the fight
      // detector (three repairs in a window) never backs off from them.
      await topo.stopServer(topo.ns("be2"), 8080);
      await waitFor("be2 out of the map again", async () => ((h) => (!h.none && !h.be2 ? h : undefined))(await hits(topo.outside, 6)), 10_000);
      await topo.serveTcp(topo.ns("be2"), 8080, "be2");
      await waitFor("be2 back again", async () => ((await hits(topo.outside, 3)).be2 ? true : undefined), 10_000);
    } finally {
      daemon.kill("SIGTERM");
      await daemon;
    }
  });

  it("a bad load balancer is refused at its position, nothing written", async () => {
    const before = await boltTable(topo.host);
    const bad = sb.write(
      "bad.toml",
      config({ extra: '[[load_balancers]]\nname = "x"\nlisten = "10.74.0.50:80"\n[[load_balancers.backends]]\nendpoint = "be9"\nport = 80\n' }),
    );
    const r = await sb.bolt(["apply", "-f", bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.toml:\d+:\d+: error: load balancer "x": listen address 10\.74\.0\.50 is inside network "back"/);
    expect(await boltTable(topo.host)).toBe(before);
  });

  it("destroy removes the balancer with the rest", async () => {
    await destroyClean(sb);
    expect(await topo.tcp(topo.outside, VIP, 80, 1)).toBeUndefined();
  });
});
