// Load balancers: validation at file:line:col, the verdict-map chains per algorithm and
// weight, health (rise/fall) and what the checker probes.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import { compileTable } from "../../reconcilers/nft/compile.js";
import { lbProbes } from "../../reconcilers/nft/lb-probes.js";
import { HealthState } from "../../src/watch/health.js";
import { backendHealthText } from "../../src/core/lb-health.js";
import type { Probe } from "../../src/core/lb-health.js";
import { kinds } from "./helpers/builders.js";

const dir = mkdtempSync(join(tmpdir(), "bolt-lb-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (text: string) => {
  const p = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(p, text);
  return p;
};

const base = `[networks.back]\nsubnet = "10.74.0.0/24"\n\n[[endpoints]]\nname = "be1"\nnetwork = "back"\nip = "10.74.0.11"\n\n[[endpoints]]\nname = "be2"\nnetwork = "back"\n`;
const lb = (body: string) => `${base}\n[[load_balancers]]\nname = "web"\nlisten = "203.0.113.10:80"\n${body}`;
const be = (x: string) => `[[load_balancers.backends]]\n${x}\n`;

function errorAt(text: string, needle: string, message: RegExp) {
  let err: unknown;
  try {
    loadIntent([file(text)], "");
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const d = (err as ConfigError).diagnostics.find((x) => x.severity === "error" && message.test(x.message));
  expect(d, (err as ConfigError).diagnostics.map((x) => x.message).join("\n")).toBeDefined();
  const before = text.slice(0, text.indexOf(needle)).split("\n");
  expect({ line: d!.source?.line, col: d!.source?.col }).toEqual({ line: before.length, col: before.at(-1)!.length + 1 });
}

const rulesOf = (text: string, down: string[] = []) => {
  const k = kinds(loadIntent([file(text)], "").intent);
  const t = compileTable({
    nft: { ...k.nft!, lbDown: down },
    networks: k.networks,
    endpointIps: new Map([
      ["be1", 0x0a4a000b],
      ["be2", 0x0a4a0002],
    ]),
  })!;
  return t.chains.flatMap((c) => c.rules.map((r) => `${c.name} ${r.key}: ${r.text}`));
};

describe("load balancer config errors", () => {
  it("a VIP inside a bolt network, an unknown endpoint, a family mismatch, both ip and endpoint", () => {
    errorAt(
      lb(be('endpoint = "be1"\nport = 80')).replace("203.0.113.10:80", "10.74.0.50:80"),
      '"10.74.0.50:80"',
      /listen address 10\.74\.0\.50 is inside network "back"/,
    );
    errorAt(lb(be('endpoint = "bee1"\nport = 80')), '"bee1"', /backend 1: endpoint "bee1" is not defined/);
    errorAt(lb(be('ip = "fd00::5"\nport = 80')), '"fd00::5"', /is IPv6 but the VIP is IPv4/);
    errorAt(lb(be('ip = "10.9.9.9"\nendpoint = "be1"\nport = 80')), "[[load_balancers.backends]]", /give exactly one of ip or endpoint/);
    errorAt(
      lb(be('endpoint = "be1"\nport = 80') + '[load_balancers.health_check]\nmethod = "tcp"\ninterval = "1s"\ntimeout = "2s"\n'),
      "[load_balancers.health_check]",
      /timeout must be shorter than its interval/,
    );
  });
});

describe("load balancer chains", () => {
  it("round_robin over the weights (divided by their gcd), one DNAT chain per backend, forward accepts", () => {
    const r = rulesOf(lb(be('endpoint = "be1"\nport = 8080\nweight = 200') + be('endpoint = "be2"\nport = 8080\nweight = 100')));
    expect(r).toContain("nat_pre lb:web: ip daddr 203.0.113.10 tcp dport 80 jump lb0");
    expect(r).toContain("nat_out lb:web: ip daddr 203.0.113.10 tcp dport 80 jump lb0");
    expect(r).toContain("lb0 pick: numgen inc mod 3 vmap { 0 : goto lb0_0, 1 : goto lb0_0, 2 : goto lb0_1 }");
    expect(r).toContain("lb0_0 dnat:be1:8080: meta l4proto tcp dnat ip to 10.74.0.11:8080");
    expect(r).toContain("lb0_1 dnat:be2:8080: meta l4proto tcp dnat ip to 10.74.0.2:8080");
    expect(r).toContain("forward lb:web:be1:8080: ip daddr 10.74.0.11 tcp dport 8080 ct status dnat accept");
  });

  it("source_hash hashes the client; random draws; a down backend leaves the map; none left: no DNAT", () => {
    const two = be('endpoint = "be1"\nport = 80') + be('ip = "10.74.0.99"\nport = 80');
    expect(rulesOf(lb(`algorithm = "source_hash"\n${two}`))).toContain("lb0 pick: jhash ip saddr mod 2 vmap { 0 : goto lb0_0, 1 : goto lb0_1 }");
    expect(rulesOf(lb(`algorithm = "weighted"\n${two}`))).toContain("lb0 pick: numgen random mod 2 vmap { 0 : goto lb0_0, 1 : goto lb0_1 }");
    const down = rulesOf(lb(two), ["web/be1:80"]);
    expect(down).toContain("lb0 pick: numgen inc mod 1 vmap { 0 : goto lb0_0 }");
    expect(down).toContain("lb0_0 dnat:10.74.0.99:80: meta l4proto tcp dnat ip to 10.74.0.99:80");
    const none = rulesOf(lb(two), ["web/be1:80", "web/10.74.0.99:80"]);
    expect(none.filter((x) => x.includes("jump lb0") || x.startsWith("lb0"))).toEqual([]);
  });

  it("least_connections is accepted, not enforced, and said so", () => {
    const { warnings } = loadIntent([file(lb(`algorithm = "least_connections"\n${be('endpoint = "be1"\nport = 80')}`))], "");
    expect(warnings.map((w) => w.message)).toContain(
      'accepted, not enforced: load balancer "web": algorithm "least_connections" — nft keeps no per-backend connection count; balanced as round_robin',
    );
  });
});

describe("health", () => {
  const p = (id: string): Probe => ({ id, method: "tcp", addr: "10.0.0.1", port: 80, path: "/", timeoutMs: 100, intervalMs: 1000, rise: 2, fall: 3 });

  it("down after fall failures in a row, up after rise passes in a row; a flap resets the streak", () => {
    const h = new HealthState();
    const probes = [p("web/a"), p("web/b")];
    const round = (a: boolean, b: boolean) =>
      h.observe(
        probes,
        new Map([
          ["web/a", a],
          ["web/b", b],
        ]),
      );
    expect(round(false, true)).toBe(false);
    expect(round(false, true)).toBe(false);
    expect(round(true, true)).toBe(false); // streak reset
    expect(round(false, true)).toBe(false);
    expect(round(false, true)).toBe(false);
    expect(round(false, true)).toBe(true);
    expect(h.down()).toEqual(["web/a"]);
    expect(round(true, true)).toBe(false);
    expect(round(true, true)).toBe(true);
    expect(h.down()).toEqual([]);
  });

  it("records each backend's verdict and when it last changed (bolt show reads it)", () => {
    let now = 0;
    const h = new HealthState([], () => new Date(Date.UTC(2026, 0, 1, 0, 0, now)));
    const probes = [{ ...p("web/a"), fall: 1 }, p("web/b")];
    h.observe(
      probes,
      new Map([
        ["web/a", true],
        ["web/b", true],
      ]),
    );
    now = 5;
    expect(
      h.observe(
        probes,
        new Map([
          ["web/a", false],
          ["web/b", true],
        ]),
      ),
    ).toBe(true);
    expect(h.backends()).toEqual({ "web/a": { up: false, since: "2026-01-01T00:00:05.000Z" }, "web/b": { up: true, since: "2026-01-01T00:00:00.000Z" } });
    const file = { down: h.down(), updated: "", backends: h.backends() };
    expect(backendHealthText(file, "web/a")).toBe("backend web/a down since 2026-01-01T00:00:05.000Z");
    expect(backendHealthText(undefined, "web/a")).toBe("backend web/a not checked (in the map; health checks run in bolt watch)");
  });

  it("probes the planned address of each backend of a checked balancer", () => {
    const text = lb(
      be('endpoint = "be2"\nport = 8080') + be('ip = "10.74.0.99"\nport = 80') + '[load_balancers.health_check]\nmethod = "http"\npath = "/healthz"\n',
    );
    const k = kinds(loadIntent([file(text)], "").intent);
    const desired = [{ kind: "endpoint", name: "be2", id: "endpoint:be2", keys: [], spec: { ip: "10.74.0.2/24" }, deps: [], owned: true }];
    expect(lbProbes(k.nft, desired)).toEqual([
      { id: "web/be2:8080", method: "http", addr: "10.74.0.2", port: 8080, path: "/healthz", timeoutMs: 1000, intervalMs: 2000, rise: 2, fall: 3 },
      { id: "web/10.74.0.99:80", method: "http", addr: "10.74.0.99", port: 80, path: "/healthz", timeoutMs: 1000, intervalMs: 2000, rise: 2, fall: 3 },
    ]);
  });
});
