// The daemon's runtime endpoints and config cache without a kernel: the intent is files +
// runtime endpoints (shadowed by a file's endpoint of the same name, left out while their
// network is gone), their errors carry a position in "[runtime endpoints]", the table in
// bolt.db round-trips, the cache re-reads on a save and on attach/detach, and API work never
// overlaps another.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import pino from "pino";
import { type BoltError, ConfigError } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import { ENDPOINTS } from "../../reconcilers/endpoint/intent.js";
import { StateStore } from "../../src/state/store.js";
import { CachedLoader, RUNTIME_FILE, RuntimeEndpointStore, loadWithRuntime, readRuntimeEndpoints } from "../../src/daemon/runtime-endpoints.js";
import type { RuntimeEndpoint } from "../../src/daemon/runtime-endpoints.js";
import { WatchController } from "../../src/watch/controller.js";
import type { ControllerOptions } from "../../src/watch/controller.js";
import { WatchMetrics } from "../../src/watch/metrics.js";

const dir = mkdtempSync(join(tmpdir(), "bolt-daemon-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const boltfile = (extra = "") => {
  const p = join(dir, `bolt-${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(p, `[networks.front]\nsubnet = "10.70.0.0/24"\n\n[[endpoints]]\nname = "web"\nnetwork = "front"\n${extra}`);
  return p;
};

const names = (r: ReturnType<typeof loadWithRuntime>) => fragment(r.intent, ENDPOINTS).map((e) => e.name);

describe("loadWithRuntime", () => {
  it("adds runtime endpoints to the files' intent, sourced from [runtime endpoints]", () => {
    const f = boltfile();
    const r = loadWithRuntime(f ? [f] : [], "p-", {}, [{ name: "api1", network: "front", ip: "10.70.0.50" }]);
    expect(names(r)).toEqual(["web", "api1"]);
    const api1 = fragment(r.intent, ENDPOINTS).find((e) => e.name === "api1")!;
    expect(api1.source.file).toBe(RUNTIME_FILE);
    expect(api1.netns).toBe("p-api1");
    expect(r.intent.files).toEqual([f]);
    expect(r.active.map((e) => e.name)).toEqual(["api1"]);
  });

  it("a file's endpoint of the same name wins; a runtime endpoint whose network is gone waits (warnings, not errors)", () => {
    const f = boltfile();
    const r = loadWithRuntime([f], undefined, {}, [
      { name: "web", network: "front" },
      { name: "lost", network: "back" },
    ]);
    expect(names(r)).toEqual(["web"]);
    expect(fragment(r.intent, ENDPOINTS)[0]!.source.file).toBe(f);
    const warnings = r.warnings.filter((d) => d.severity === "warning").map((d) => d.message);
    expect(warnings.some((m) => m.includes('runtime endpoint "web" is shadowed') && m.includes(f))).toBe(true);
    expect(warnings.some((m) => m.includes('runtime endpoint "lost": network "back" is in no config file'))).toBe(true);
    expect(r.active).toEqual([]);
  });

  it("a runtime endpoint's own error names it at [runtime endpoints]:line:col", () => {
    const f = boltfile();
    let err: unknown;
    try {
      loadWithRuntime([f], undefined, {}, [
        { name: "ok", network: "front" },
        { name: "far", network: "front", ip: "10.99.0.5" },
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const d = (err as BoltError).diagnostics.find((x) => x.severity === "error")!;
    expect(d.source?.file).toBe(RUNTIME_FILE);
    // The generated file: block 1 on lines 1-3, a blank line, block 2 from line 5; its ip on 8.
    expect(d.source?.line).toBe(8);
  });

  it("no runtime endpoints: exactly the files' intent", () => {
    const f = boltfile();
    const r = loadWithRuntime([f], undefined, {}, []);
    expect(names(r)).toEqual(["web"]);
    expect(r.warnings.filter((d) => d.severity === "error")).toEqual([]);
  });
});

describe("the runtime_endpoints table", () => {
  it("round-trips in bolt.db beside the store's tables, per target, in attach order; the CLI reads it read-only", () => {
    const state = mkdtempSync(join(dir, "state-"));
    expect(readRuntimeEndpoints(state, "t1")).toEqual([]);
    new StateStore(state).close();
    // A store from before runtime endpoints has no such table: none.
    expect(readRuntimeEndpoints(state, "t1")).toEqual([]);
    const s = new RuntimeEndpointStore(state);
    const a: RuntimeEndpoint = { name: "b", network: "front", ip6: "fd00::5" };
    s.add("t1", a);
    s.add("t1", { name: "a", network: "front" });
    s.add("t2", { name: "x", network: "n", netns: "elsewhere" });
    expect(s.list("t1").map((e) => e.name)).toEqual(["b", "a"]);
    expect(readRuntimeEndpoints(state, "t1")).toEqual([a, { name: "a", network: "front" }]);
    expect(readRuntimeEndpoints(state, "t2")).toEqual([{ name: "x", network: "n", netns: "elsewhere" }]);
    expect(() => s.add("t1", { name: "a", network: "front" })).toThrow();
    expect(s.remove("t1", "b")).toBe(true);
    expect(s.remove("t1", "b")).toBe(false);
    expect(readRuntimeEndpoints(state, "t1").map((e) => e.name)).toEqual(["a"]);
    s.close();
  });
});

describe("CachedLoader", () => {
  it("keeps the result while nothing changed; a save, an attach (invalidate) or a changed list re-reads", () => {
    const f = boltfile();
    let eps: RuntimeEndpoint[] = [];
    const c = new CachedLoader(() => eps);
    const a = c.load([f], undefined);
    expect(c.load([f], undefined)).toBe(a);
    writeFileSync(f, `[networks.front]\nsubnet = "10.70.0.0/24"\n`);
    const b = c.load([f], undefined);
    expect(b).not.toBe(a);
    expect(names(b)).toEqual([]);
    eps = [{ name: "api1", network: "front" }];
    const d = c.load([f], undefined);
    expect(names(d)).toEqual(["api1"]);
    c.invalidate();
    expect(c.load([f], undefined)).not.toBe(d);
  });

  it("keeps an error too, and throws it again until the file changes", () => {
    const f = boltfile();
    writeFileSync(f, `[networks.front]\nsubnet = "10.70.0.0/33"\n`);
    const c = new CachedLoader(() => []);
    expect(() => c.load([f], undefined)).toThrow(ConfigError);
    expect(() => c.load([f], undefined)).toThrow(ConfigError);
    writeFileSync(f, `[networks.front]\nsubnet = "10.70.0.0/24"\n`);
    expect(c.load([f], undefined).intent.files).toEqual([f]);
  });

  it("returns a fresh warnings array through `loader` (callers append to it)", () => {
    const f = boltfile();
    const c = new CachedLoader(() => [{ name: "web", network: "front" }]);
    const w1 = c.loader([f], undefined).warnings;
    w1.push({ severity: "warning", message: "appended by a caller" });
    expect(c.loader([f], undefined).warnings.some((d) => d.message === "appended by a caller")).toBe(false);
  });
});

describe("WatchController.runExclusive", () => {
  it("runs API work one at a time, in order", async () => {
    const c = new WatchController({ log: pino({ level: "silent" }), metrics: new WatchMetrics(), debounceMs: 10 } as unknown as ControllerOptions);
    const log: string[] = [];
    const job = (name: string, ms: number) =>
      c.runExclusive(async () => {
        log.push(`${name}+`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${name}-`);
        return name;
      });
    const results = await Promise.all([job("a", 30), job("b", 1), job("c", 10)]);
    expect(results).toEqual(["a", "b", "c"]);
    expect(log).toEqual(["a+", "a-", "b+", "b-", "c+", "c-"]);
    // A failing job releases the next one.
    const failed = c.runExclusive(async () => {
      throw new Error("boom");
    });
    await expect(failed).rejects.toThrow("boom");
    expect(await job("d", 1)).toBe("d");
    await c.stop();
  });
});

describe("WatchController backoff after a failed pass", () => {
  it("kernel and resync events wait for the backoff; a change in the mesh store goes at once", async () => {
    vi.useFakeTimers();
    try {
      const f = boltfile();
      const c = new WatchController({
        files: [f],
        log: pino({ level: "silent" }),
        metrics: new WatchMetrics(),
        debounceMs: 10,
        load: () => ({ ...loadWithRuntime([f], undefined, {}, []), monitoring: {}, volatile: true }),
        // Every pass fails before it reaches the kernel: the backoff starts at 1 s.
        checkTarget: async () => {
          throw new Error("no such namespace");
        },
      } as unknown as ControllerOptions);
      c.enqueue("start", { immediate: true });
      await vi.advanceTimersByTimeAsync(5);
      expect(c.passes).toBe(1);
      c.enqueue("resync");
      c.enqueue("kernel");
      await vi.advanceTimersByTimeAsync(500);
      expect(c.passes).toBe(1);
      c.enqueue("store");
      await vi.advanceTimersByTimeAsync(20);
      expect(c.passes).toBe(2);
      // The failure count grew: the next backoff is 2 s, and a resync still waits it out.
      c.enqueue("resync");
      await vi.advanceTimersByTimeAsync(1500);
      expect(c.passes).toBe(2);
      await vi.advanceTimersByTimeAsync(600);
      expect(c.passes).toBe(3);
      await c.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
