// `bolt watch` against a real namespace: config edits converge within seconds, a bridge deleted
// by hand comes back, an invalid or unreadable config leaves the kernel alone and is reported,
// a later valid save applies, metrics count what happened, SIGTERM exits 0.
import { mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResultPromise } from "execa";
import { Sandbox, SKIP_REASON, ipJson, must, posOf, requireBuild, snapshot } from "./harness.js";
import type { Json } from "./harness.js";
import { expectNetwork } from "./checks.js";
import { freePort, httpGet, logLines, metric, sleep, waitFor } from "./watch-helpers.js";

const front = `
[networks.front]
subnet = "10.81.0.0/24"

[[endpoints]]
name = "web"
network = "front"
`;
const withBack = (mtu = 1500) => `${front}
[networks.back]
subnet = "10.82.0.0/24"
mtu = ${mtu}
`;

describe.skipIf(!!SKIP_REASON)("bolt watch", () => {
  const sb = new Sandbox();
  let file: string;
  let daemon: ResultPromise;
  let base: string;

  const health = async () => {
    const r = await httpGet(`${base}/healthz`);
    return { status: r.status, body: JSON.parse(r.body) as Json };
  };
  const metrics = async () => (await httpGet(`${base}/metrics`)).body;
  const hasLink = async (dev: string) => (await ipJson(sb.target, ["link", "show"])).some((l: Json) => l.ifname === dev);
  const alive = () => {
    if (daemon.exitCode !== null) return false;
    try {
      process.kill(daemon.pid!, 0);
      return true;
    } catch {
      return false;
    }
  };

  /** Saves `text` the way editors do: a new file renamed over the old one. */
  const save = (text: string) => {
    const tmp = sb.write(".bolt-network.toml.swp", text);
    must(["mv", "-f", tmp, file]);
  };

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    file = sb.write("bolt-network.toml", front);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    daemon = sb.spawnBolt(["watch", "-f", file, "--metrics-listen", `127.0.0.1:${port}`, "--resync", "60s", "--debounce", "200ms", "--json"]);
    const exited = daemon.then((r) => {
      throw new Error(`bolt watch exited (${r.exitCode}) at start: ${String(r.stderr).slice(-2000)}`);
    });
    await Promise.race([waitFor("the first pass", async () => (await health()).status === 200, 20_000), exited]);
    exited.catch(() => {});
  });
  afterAll(() => sb.cleanup());

  it("converges at start and serves healthz with the last pass", async () => {
    await expectNetwork(sb.target, { name: "front", bridge: "bolt-front", address: "10.81.0.1/24", mtu: 1500 });
    const h = await health();
    expect(h.body.status).toBe("ok");
    expect(h.body.last_pass.outcome).toMatch(/applied|noop/);
    expect(h.body.config.valid).toBe(true);
  });

  it("a network added to the file exists within seconds", async () => {
    const t0 = Date.now();
    await save(withBack());
    // Waits longer than it asserts: the failure then says how long it took.
    await waitFor("bolt-back", () => hasLink("bolt-back"), 30_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await expectNetwork(sb.target, { name: "back", bridge: "bolt-back", address: "10.82.0.1/24", mtu: 1500 });
  });

  it("a bolt bridge deleted by hand is back within seconds, and the repair is counted", async () => {
    await waitFor("the passes after the edit to settle", async () => !(await health()).body.last_pass.changes, 10_000);
    const repairsBefore = metric(await metrics(), "bolt_drift_repairs_total") ?? 0;
    await must(["ip", "-n", sb.target, "link", "del", "bolt-back"]);
    const t0 = Date.now();
    await waitFor("bolt-back to come back", () => hasLink("bolt-back"), 30_000, 50);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(10_000);
    await expectNetwork(sb.target, { name: "back", bridge: "bolt-back", address: "10.82.0.1/24", mtu: 1500 });
    const m = await waitFor("the repair in the metrics", async () => {
      const text = await metrics();
      return (metric(text, "bolt_drift_repairs_total") ?? 0) > repairsBefore && text;
    });
    expect(metric(m, "bolt_changes_applied_total")).toBeGreaterThanOrEqual(3);
    expect(metric(m, "bolt_passes_total", '{outcome="applied"}')).toBeGreaterThanOrEqual(2);
    expect(metric(m, "bolt_resources", '{kind="network"}')).toBe(2);
    expect(metric(m, "bolt_resources", '{kind="endpoint"}')).toBe(1);
    expect(metric(m, "bolt_last_success_timestamp_seconds")).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(m).toMatch(/^bolt_pass_duration_seconds_count \d+$/m);
  });

  it("an invalid save changes nothing, reports file:line:col, and a later valid save applies", async () => {
    const before = await snapshot(sb.target);
    const bad = withBack().replace('subnet = "10.82.0.0/24"', 'subnet = "10.82.0.0/33"');
    await save(bad);
    const pos = posOf(bad, '"10.82.0.0/33"');
    const h = await waitFor("healthz to report the config error", async () => {
      const x = await health();
      return x.status === 503 && x.body.config.valid === false && x;
    });
    expect(h.body.config.error).toContain(`${file}:${pos.line}:${pos.col}`);
    expect(h.body.config.applying).toBe("the last good configuration");
    // A kernel event meanwhile still converges to the last good config, never to the bad one.
    await sleep(1000);
    expect(await snapshot(sb.target)).toEqual(before);
    expect(metric(await metrics(), "bolt_config_valid")).toBe(0);

    await save(withBack(1400));
    await waitFor("mtu 1400 on bolt-back", async () => (await ipJson(sb.target, ["link", "show", "bolt-back"]))[0]?.mtu === 1400, 10_000);
    await waitFor("healthz ok again", async () => (await health()).status === 200);
  });

  it("bad input (truncated to 0 bytes, missing file, directory, unreadable, 10 MB) is reported; the daemon survives and the kernel is untouched", async () => {
    await waitFor("a quiet kernel", async () => !(await health()).body.last_pass.changes, 10_000);
    const before = await snapshot(sb.target);
    const cases: [string, () => void, RegExp][] = [
      // Valid TOML that declares nothing: applying it would delete everything bolt made.
      ["truncated to 0 bytes", () => writeFileSync(file, ""), /declares nothing \(an empty or truncated file\?\).*--allow-destroy/],
      ["missing file", () => unlinkSync(file), /no such file/],
      ["directory", () => mkdirSync(file), /is a directory/],
      // Root reads any mode, so "unreadable" is a symlink to itself (ELOOP).
      ["unreadable", () => (rmSync(file, { recursive: true }), symlinkSync(file, file)), /cannot read config file: .*(ELOOP|too many)/i],
      ["10 MB", () => (unlinkSync(file), writeFileSync(file, withBack(1400) + "#".repeat(10 * 1024 * 1024) + "\n")), /bytes; the limit is/],
    ];
    for (const [name, act, expected] of cases) {
      act();
      const h = await waitFor(`healthz to report the ${name}`, async () => {
        const x = await health();
        return x.status === 503 && expected.test(String(x.body.config.error)) && x;
      });
      expect(h.body.config.error, name).toContain(file);
      expect(alive(), `daemon alive after ${name}`).toBe(true);
      expect(await snapshot(sb.target), `kernel untouched after ${name}`).toEqual(before);
    }
    rmSync(file, { force: true });
    save(withBack(1400));
    await waitFor("healthz ok after the file is back", async () => (await health()).status === 200);
    expect(await snapshot(sb.target)).toEqual(before);
  });

  it("a namespace made for somebody else (and its /etc/netns files) is not a pass; the endpoint's own namespace deleted by hand comes back", async () => {
    await waitFor("the passes before to settle", async () => !(await health()).body.last_pass.changes, 10_000);
    await sleep(800);
    const before = (await health()).body.passes as number;
    const other = await sb.addNetns("other");
    mkdirSync(`/etc/netns/${other}`, { recursive: true });
    writeFileSync(`/etc/netns/${other}/hosts`, "127.0.0.1 localhost\n");
    await must(["ip", "netns", "del", other]);
    // Three debounces' time: a pass that was due would have run.
    await sleep(1500);
    expect((await health()).body.passes).toBe(before);
    const web = sb.ns("web");
    await must(["ip", "netns", "del", web]);
    await waitFor("web's namespace to come back", async () => (await sb.mine()).includes(web), 20_000, 50);
    expect((await health()).body.passes).toBeGreaterThan(before);
  });

  it("SIGTERM: exit 0, one JSON log line per pass", async () => {
    process.kill(daemon.pid!, "SIGTERM");
    const r = await daemon;
    expect(r.exitCode).toBe(0);
    if (process.env.BOLT_TEST_DAEMON_LOG) writeFileSync(process.env.BOLT_TEST_DAEMON_LOG, String(r.stderr));
    const lines = logLines(String(r.stderr));
    const passes = lines.filter((l) => l.msg === "pass");
    expect(passes.length).toBeGreaterThanOrEqual(5);
    for (const p of passes) {
      expect(Array.isArray(p.trigger)).toBe(true);
      expect(typeof p.duration_ms).toBe("number");
      expect(["applied", "noop", "invalid_config", "failed", "backoff"]).toContain(p.outcome);
      expect(typeof p.changes).toBe("number");
    }
    expect(passes.some((p) => p.drift === true && (p.trigger as string[]).includes("kernel"))).toBe(true);
    expect(passes.some((p) => p.outcome === "invalid_config" && String(p.error).includes(file))).toBe(true);
    expect(lines.some((l) => l.msg === "stopped")).toBe(true);
    // Its monitors went with it.
    const monitors = await must(["sh", "-c", `ps -eo args | grep -c "[i]p -n ${sb.target} monitor" || true`]);
    expect(monitors.trim()).toBe("0");
  });
});

describe.skipIf(!!SKIP_REASON)("bolt watch: [monitoring] from the config, resync, fight backoff", () => {
  const sb = new Sandbox();
  let daemon: ResultPromise;

  afterAll(() => sb.cleanup());

  it("listens where [monitoring] says, exports nft rule counters, resyncs, backs off from a fight", async () => {
    requireBuild();
    await sb.addNetns();
    const port = await freePort();
    const file = sb.write("bolt-network.toml", `${front}\n[monitoring]\nlisten = "127.0.0.1:${port}"\nenable_detailed_metrics = true\n`);
    daemon = sb.spawnBolt(["watch", "-f", file, "--resync", "1s", "--json"]);
    try {
      await monitoringChecks(`http://127.0.0.1:${port}`);
    } catch (e) {
      // The daemon's log says why.
      if (daemon.exitCode === null) process.kill(daemon.pid!, "SIGKILL");
      const r = await daemon;
      throw new Error(`${(e as Error).message}\n--- bolt watch log (tail) ---\n${String(r.stderr).split("\n").slice(-40).join("\n")}`);
    }
  });

  async function monitoringChecks(base: string) {
    const text = await waitFor(
      "nft rule counters",
      async () => {
        const m = (await httpGet(`${base}/metrics`)).body;
        return /^bolt_nft_rule_packets\{rule="[^"]+"\} \d+$/m.test(m) && m;
      },
      30_000,
    );
    expect(text).toMatch(/^bolt_nft_rule_bytes\{rule="forward isolation-out"\} \d+$/m);
    expect(metric(text, "bolt_config_valid")).toBe(1);
    // Periodic resync passes happen without any event.
    await waitFor("resync passes", async () => (metric((await httpGet(`${base}/metrics`)).body, "bolt_passes_total", '{outcome="noop"}') ?? 0) >= 2, 15_000);

    // Another writer keeps deleting the bridge: three repairs, then bolt backs off and says so.
    const hasFront = async () => (await ipJson(sb.target, ["link", "show"])).some((l: Json) => l.ifname === "bolt-front");
    const repairs = async () => metric((await httpGet(`${base}/metrics`)).body, "bolt_drift_repairs_total") ?? 0;
    for (let i = 0; i < 3; i++) {
      const n = await repairs();
      await must(["ip", "-n", sb.target, "link", "del", "bolt-front"]);
      // The repair pass is over (applied and verified) before the next deletion.
      await waitFor(`repair ${i + 1}`, async () => (await repairs()) > n && hasFront(), 30_000, 50);
    }
    const h = await waitFor(
      "healthz to report the fight",
      async () => {
        const r = await httpGet(`${base}/healthz`);
        const body = JSON.parse(r.body);
        return r.status === 503 && body.fighting.length === 1 && body;
      },
      10_000,
    );
    expect(h.fighting[0].drift).toContain("create network:front");
    await must(["ip", "-n", sb.target, "link", "del", "bolt-front"]);
    await sleep(4000);
    expect(await hasFront(), "left alone during the backoff").toBe(false);
    const m = (await httpGet(`${base}/metrics`)).body;
    expect(metric(m, "bolt_fight_backoff")).toBe(1);
    expect(metric(m, "bolt_fights_detected_total")).toBe(1);
    // The backoff (15 s for the first fight) ends and bolt tries again.
    await waitFor("the repair after the backoff", hasFront, 30_000, 100);

    process.kill(daemon.pid!, "SIGINT");
    const r = await daemon;
    expect(r.exitCode).toBe(0);
    const lines = logLines(String(r.stderr));
    expect(lines.some((l) => l.msg === "pass" && (l.trigger as string[]).includes("resync"))).toBe(true);
    expect(lines.some((l) => l.msg === "pass" && l.outcome === "backoff")).toBe(true);
    expect(lines.some((l) => String(l.msg).startsWith("another writer keeps undoing bolt's changes"))).toBe(true);
  }
});

describe.skipIf(!!SKIP_REASON)("bolt watch killed with SIGKILL", () => {
  const sb = new Sandbox();
  afterAll(() => sb.cleanup());

  it("takes its kernel monitors with it: nothing of it is left in the namespace", async () => {
    await sb.addNetns();
    const file = sb.write("bolt-network.toml", front);
    const port = await freePort();
    const daemon = sb.spawnBolt(["watch", "-f", file, "--metrics-listen", `127.0.0.1:${port}`, "--resync", "60s", "--json"]);
    const pids = async () => (await must(["ip", "netns", "pids", sb.target])).split("\n").filter(Boolean);
    // The monitors enter the namespace (`ip -n`, `ip netns exec … nft monitor`); the daemon stays outside.
    await waitFor("the first pass", async () => (await httpGet(`http://127.0.0.1:${port}/healthz`)).status === 200, 20_000);
    await waitFor("both monitors in the namespace", async () => (await pids()).length >= 2, 10_000);
    process.kill(daemon.pid!, "SIGKILL");
    await daemon.catch(() => {});
    // An `nft monitor` that outlived it would see no more events, never write, and keep the namespace alive.
    await waitFor("the monitors to be gone", async () => (await pids()).length === 0, 5_000).catch(async (e) => {
      const left = await must(["sh", "-c", `ps -o pid,args -p ${(await pids()).join(",")} || true`]);
      throw new Error(`${(e as Error).message}\n${left}`);
    });
  });
});
