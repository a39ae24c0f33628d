// `bolt daemon`: the local API for a target without a config to watch. The CLI's plan and
// apply with absolute -f paths run in it (the same bytes as --no-daemon), endpoints attach
// to the networks of its last apply, and its start repairs an apply a kill -9 interrupted.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResultPromise } from "execa";
import { Sandbox, SKIP_REASON, ipJson, netnsList, ping, requireBuild, run, waitForFile } from "./harness.js";
import type { Json } from "./harness.js";
import { waitFor } from "./watch-helpers.js";
import { apiRequest } from "../../src/daemon/socket.js";

const config = `
[networks.jobs]
subnet = "10.86.0.0/24"

[[endpoints]]
name = "web"
network = "jobs"
`;

describe.skipIf(!!SKIP_REASON)("bolt daemon", () => {
  const sb = new Sandbox();
  let file: string;
  let socket: string;
  let daemon: ResultPromise;
  let env: Record<string, string>;

  const api = (method: string, path: string, body?: unknown) => apiRequest(socket, method, path, body, 60_000);
  const cli = (args: string[]) => sb.bolt(args, { env });
  const requests = async (route: string): Promise<number> => ((await api("GET", "/v1/stats?traffic=0")).body.requests as Json)[route]?.count ?? 0;
  const start = async (extraEnv: Record<string, string> = {}) => {
    daemon = sb.spawnBolt(["daemon", "--json"], { env: { ...env, ...extraEnv } });
    const exited = daemon.then((r) => {
      throw new Error(`bolt daemon exited (${r.exitCode}) at start: ${String(r.stderr).slice(-2000)}`);
    });
    exited.catch(() => {});
    await Promise.race([waitFor("the API", async () => (await api("GET", "/v1/health")).status === 200, 30_000), exited]);
  };
  const stop = async () => {
    process.kill(daemon.pid!, "SIGTERM");
    const r = await daemon;
    expect(r.exitCode, String(r.stderr).slice(-2000)).toBe(0);
  };
  const journalRows = async () => {
    const r = await run(["sqlite3", join(sb.stateDir, "bolt.db"), "SELECT count(*) FROM journal"]);
    return r.code === 0 ? Number(r.stdout.trim()) : undefined;
  };

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    ({ env, socket } = sb.privateRunDir());
    file = sb.write("jobs.toml", config);
    await start();
  });
  afterAll(() => sb.cleanup());

  it("has no configuration until an apply through it; plans and applies what the CLI names", async () => {
    const h = await api("GET", "/v1/health");
    expect(h.body.daemon).toMatchObject({ mode: "daemon", target: sb.target, files: [] });
    expect((await api("POST", "/v1/endpoints", { name: "j1", network: "jobs" })).status).toBe(409);
    const via = await cli(["plan", "-f", file, "--detailed-exitcode"]);
    const local = await cli(["plan", "-f", file, "--detailed-exitcode", "--no-daemon"]);
    expect(via.code, via.stderr).toBe(2);
    expect(via.stdout).toBe(local.stdout);
    expect(via.stderr).toBe(local.stderr);
    expect(await requests("POST /v1/plan")).toBe(1);
    const applied = await cli(["apply", "-f", file]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain("Apply complete!");
    expect(await requests("POST /v1/apply")).toBe(1);
    expect((await ipJson(sb.target, ["link", "show"])).some((l: Json) => l.ifname === "bolt-jobs")).toBe(true);
    expect((await api("GET", "/v1/health")).body.daemon).toMatchObject({ files: [file] });
    expect((await cli(["plan", "-f", file, "--detailed-exitcode"])).code).toBe(0);
  });

  it("its kernel cache: repeated plans read nothing; a change made by hand is seen as soon as ip monitor reports it", async () => {
    const hits = async () => ((await api("GET", "/v1/stats?traffic=0")).body.read_cache as { hits: number }).hits;
    const h0 = await hits();
    for (let i = 0; i < 2; i++) expect((await cli(["plan", "-f", file, "--detailed-exitcode"])).code).toBe(0);
    expect(await hits()).toBeGreaterThan(h0);
    // Drift no bolt command made: the event empties the cache, the next plan sees it.
    await run(["ip", "-n", sb.target, "link", "set", "dev", "bolt-jobs", "mtu", "1400"]);
    await waitFor("the plan through the daemon to see the new MTU", async () => (await cli(["plan", "-f", file, "--detailed-exitcode"])).code === 2, 5_000);
    const fixed = await cli(["apply", "-f", file]);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect((await ipJson(sb.target, ["link", "show", "bolt-jobs"]))[0].mtu).toBe(1500);
    expect((await cli(["plan", "-f", file, "--detailed-exitcode"])).code).toBe(0);
  });

  it("attaches to the networks of its last apply; the CLI plans the endpoint both ways", async () => {
    const r = await api("POST", "/v1/endpoints", { name: "j1", network: "jobs", ip: "10.86.0.50" });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(await ping(sb.ns("j1"), "10.86.0.1")).toBe(true);
    const addr = await ipJson(sb.ns("j1"), ["-4", "addr", "show", "dev", "eth0"]);
    expect(addr[0].addr_info.map((a: Json) => `${a.local}/${a.prefixlen}`)).toEqual(["10.86.0.50/24"]);
    const via = await cli(["plan", "-f", file, "--detailed-exitcode"]);
    const local = await cli(["plan", "-f", file, "--detailed-exitcode", "--no-daemon"]);
    expect(via.code, via.stdout).toBe(0);
    expect(local.code, local.stdout).toBe(0);
    expect(via.stdout).toBe(local.stdout);
  });

  it("its start rolls back an attach a kill -9 interrupted; the record stays for the next apply", async () => {
    await stop();
    const signal = join(sb.dir, "hang-reached");
    await start(sb.fakeEnv(["ip"], { BOLT_HANG_PATTERN: "bv-crash1", BOLT_HANG_SIGNAL: signal, BOLT_HANG_SECONDS: "60" }));
    // Its networks come from an apply through it (the start knows none).
    expect((await cli(["apply", "-f", file])).code).toBe(0);
    const attach = api("POST", "/v1/endpoints", { name: "crash1", network: "jobs" }).catch((e: Error) => e);
    await waitForFile(signal, 60_000, () => daemon.exitCode === null);
    process.kill(-daemon.pid!, "SIGKILL");
    expect((await daemon).signal).toBe("SIGKILL");
    expect(await attach).toBeInstanceOf(Error);
    const before = await journalRows();
    if (before !== undefined) expect(before).toBe(1);
    await start();
    const after = await journalRows();
    if (after !== undefined) expect(after).toBe(0);
    // Rolled back: no half-made veth; the record makes the next apply create it whole.
    expect((await ipJson(sb.target, ["link", "show"])).some((l: Json) => l.ifname === "bv-crash1")).toBe(false);
    expect(await netnsList()).not.toContain(sb.ns("crash1"));
    const applied = await cli(["apply", "-f", file]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain("crash1");
    expect(await ping(sb.ns("crash1"), "10.86.0.1")).toBe(true);
    expect((await cli(["plan", "-f", file, "--detailed-exitcode", "--no-daemon"])).code).toBe(0);
    await stop();
  });
});
