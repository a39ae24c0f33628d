// The daemon's local API (docs/api.md) against a real namespace: `bolt watch` serves HTTP/JSON
// on a unix socket in a per-test run dir (BOLT_RUN_DIR, never /run/bolt); a non-root caller
// cannot connect; `bolt plan` through the daemon and with --no-daemon print the same bytes;
// endpoints attached through the API are in the kernel (eth0 with its address, the gateway
// answers), survive a file-triggered pass and a restart, and detach; a CLI apply goes through
// the daemon while it watches; a daemon killed mid-attach is repaired by the next start.
import { chmodSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResultPromise } from "execa";
import { Sandbox, SKIP_REASON, ipJson, must, netnsList, ping, requireBuild, run, waitForFile } from "./harness.js";
import type { Json } from "./harness.js";
import { expectVeth } from "./checks.js";
import { waitFor } from "./watch-helpers.js";
import { apiRequest } from "../../src/daemon/socket.js";

const front = `
[networks.front]
subnet = "10.84.0.0/24"

[[endpoints]]
name = "web"
network = "front"
`;
const withBack = `${front}
[networks.back]
subnet = "10.85.0.0/24"
`;

describe.skipIf(!!SKIP_REASON)("bolt watch: the local API", () => {
  const sb = new Sandbox();
  let file: string;
  let runDir: string;
  let socket: string;
  let daemon: ResultPromise;
  let env: Record<string, string>;

  const api = (method: string, path: string, body?: unknown) => apiRequest(socket, method, path, body, 60_000);
  const start = async (extraEnv: Record<string, string> = {}) => {
    daemon = sb.spawnBolt(["watch", "-f", file, "--resync", "60s", "--debounce", "100ms", "--json"], { env: { ...env, ...extraEnv } });
    const exited = daemon.then((r) => {
      throw new Error(`bolt watch exited (${r.exitCode}) at start: ${String(r.stderr).slice(-2000)}`);
    });
    exited.catch(() => {});
    await Promise.race([waitFor("the API and a first pass", async () => (await api("GET", "/v1/health")).status === 200, 30_000), exited]);
  };
  const stop = async () => {
    process.kill(daemon.pid!, "SIGTERM");
    const r = await daemon;
    expect(r.exitCode, String(r.stderr).slice(-2000)).toBe(0);
  };
  const requests = async (route: string): Promise<number> => ((await api("GET", "/v1/stats?traffic=0")).body.requests as Json)[route]?.count ?? 0;
  /** `bolt ARGS` with this test's run dir (the CLI finds the daemon's socket there). */
  const cli = (args: string[]) => sb.bolt(args, { env });
  const save = (text: string) => must(["mv", "-f", sb.write(".swp", text), file]);

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    ({ runDir, env, socket } = sb.privateRunDir());
    file = sb.write("bolt-network.toml", front);
    await start();
  });
  afterAll(() => sb.cleanup());

  it("serves /v1/health on a root-only socket and refuses a non-root caller", async () => {
    const h = await api("GET", "/v1/health");
    expect(h.body.api).toBe("v1");
    expect(h.body.daemon).toMatchObject({ target: sb.target, files: [file], netns_prefix: sb.prefix, state_dir: sb.stateDir, mode: "watch" });
    const st = statSync(socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(0);
    expect(statSync(runDir).mode & 0o777).toBe(0o700);
    const asNobody = (argv: string[]) => run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", ...argv]);
    const curl = ["curl", "-sS", "--max-time", "5", "--unix-socket", socket, "http://bolt/v1/health"];
    const denied = await asNobody(curl);
    expect(denied.code, denied.stdout).not.toBe(0);
    expect(denied.stdout).toBe("");
    // The socket's own mode is a guard too: with the directory opened for traversal, still refused.
    chmodSync(runDir, 0o711);
    try {
      const alone = await asNobody(curl);
      expect(alone.code, alone.stdout).not.toBe(0);
      expect(alone.stdout).toBe("");
    } finally {
      chmodSync(runDir, 0o700);
    }
    // The same call as root answers.
    const ok = await run(curl);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).daemon.pid).toBe(daemon.pid);
  });

  it("bolt plan through the daemon and with --no-daemon print the same bytes", async () => {
    const same = async (extra: string[]) => {
      const via = await cli(["plan", "-f", file, ...extra]);
      const local = await cli(["plan", "-f", file, "--no-daemon", ...extra]);
      expect(via.stdout).toBe(local.stdout);
      expect(via.stderr).toBe(local.stderr);
      expect(via.code).toBe(local.code);
      return via;
    };
    const before = await requests("POST /v1/plan");
    for (const extra of [[], ["--json"], ["--show-commands"], ["--detailed-exitcode"]]) expect((await same(extra)).code).toBe(0);
    expect(await requests("POST /v1/plan")).toBe(before + 4);
    // A plan with changes and a warning: the file emptied, which the daemon refuses to apply
    // (it would delete everything), so the kernel keeps what the plan wants to delete.
    save("# emptied by mistake\n");
    await waitFor("the daemon to refuse the emptied file", async () => ((await api("GET", "/v1/health")).body.config as Json).valid === false);
    for (const extra of [["--detailed-exitcode"], ["--json"], ["--show-commands"]]) {
      const r = await same(extra);
      expect(r.stdout).toContain("web");
      expect(r.code).toBe(extra[0] === "--detailed-exitcode" ? 2 : 0);
    }
    expect((await same([])).stderr).toContain("will refuse this plan");
    // An error: the same message at the same file:line:col, the same exit code.
    save('[networks.front]\nsubnet = "10.84.0.0/33"\n');
    const bad = await same([]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${file}:2:`);
    expect(await requests("POST /v1/plan")).toBe(before + 9);
    // Other files than the daemon's: planned here, not there.
    const other = sb.write("other.toml", withBack);
    const a = await cli(["plan", "-f", other]);
    expect(a.stdout).toBe((await cli(["plan", "-f", other, "--no-daemon"])).stdout);
    expect(await requests("POST /v1/plan")).toBe(before + 9);
    save(front);
    await waitFor("the daemon back on the good file", async () => {
      const h = await api("GET", "/v1/health");
      return h.status === 200 && (h.body.config as Json).valid === true;
    });
    expect((await cli(["plan", "-f", file, "--detailed-exitcode"])).code).toBe(0);
  });

  it("attaches an endpoint: eth0 with its address in its namespace, the gateway answers, plans stay empty", async () => {
    const r = await api("POST", "/v1/endpoints", { name: "api1", network: "front" });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const ep = r.body.endpoint as Json;
    expect(ep).toMatchObject({ name: "api1", network: "front" });
    expect(ep.leased.ip).toMatch(/^10\.84\.0\.\d+$/);
    // The endpoint, and name discovery: its namespace's hosts file and the other endpoint's on the network.
    expect((r.body.plan as Json).changes.map((c: Json) => `${c.action} ${c.address}`)).toEqual([
      "create endpoint:api1",
      `update resolver:${sb.ns("web")}/hosts`,
      `create resolver:${sb.ns("api1")}/hosts`,
    ]);
    await expectVeth(sb.target, {
      name: "api1",
      hostIf: "bv-api1",
      bridge: "bolt-front",
      netns: sb.ns("api1"),
      ip: `${ep.leased.ip}/24`,
      gateway: "10.84.0.1",
      mtu: 1500,
    });
    expect(await ping(sb.ns("api1"), "10.84.0.1")).toBe(true);
    // Planned like a file-defined endpoint, both ways: nothing to do.
    const via = await cli(["plan", "-f", file, "--detailed-exitcode"]);
    const local = await cli(["plan", "-f", file, "--detailed-exitcode", "--no-daemon"]);
    expect(via.code, via.stdout + via.stderr).toBe(0);
    expect(local.code, local.stdout + local.stderr).toBe(0);
    expect(via.stdout).toBe(local.stdout);
    const shown = await cli(["show"]);
    expect(shown.stdout).toContain('endpoint "api1"');
    expect(shown.stdout).toBe((await cli(["show", "--no-daemon"])).stdout);
    const list = await api("GET", "/v1/endpoints");
    expect((list.body.endpoints as Json[]).map((e) => e.name)).toEqual(["api1"]);
    // /v1/stats carries the `bolt stats --json` sample: the runtime endpoint is counted like the others.
    const stats = await api("GET", "/v1/stats");
    expect((stats.body.traffic as Json).networks.map((n: Json) => n.name)).toEqual(["front"]);
    expect((stats.body.traffic as Json).endpoints.map((e: Json) => e.name).sort()).toEqual(["api1", "web"]);
    expect(stats.body.runtime_endpoints).toBe(1);
  });

  it("refuses what it must not do: a file-defined name, a taken address, an unknown network, a bad body", async () => {
    const clash = await api("POST", "/v1/endpoints", { name: "web", network: "front" });
    expect(clash.status).toBe(409);
    expect(clash.body.error).toContain(file);
    expect((await api("POST", "/v1/endpoints", { name: "api1", network: "front" })).status).toBe(409);
    const webIp = (await ipJson(sb.ns("web"), ["-4", "addr", "show", "dev", "eth0"]))[0].addr_info[0].local as string;
    const taken = await api("POST", "/v1/endpoints", { name: "thief", network: "front", ip: webIp });
    expect(taken.status, JSON.stringify(taken.body)).toBe(409);
    expect(taken.body.error).toContain('endpoint "web"');
    const outside = await api("POST", "/v1/endpoints", { name: "far", network: "front", ip: "10.99.0.5" });
    expect(outside.status, JSON.stringify(outside.body)).toBe(422);
    expect(outside.body.error).toMatch(/^\[runtime endpoints\]:\d+:\d+: error: /);
    expect((await api("POST", "/v1/endpoints", { name: "lost", network: "nope" })).status).toBe(422);
    expect((await api("POST", "/v1/endpoints", { name: "x", network: "front", mac: "02:00:00:00:00:01" })).status).toBe(400);
    expect((await api("POST", "/v1/endpoints", { network: "front" })).status).toBe(400);
    expect((await api("DELETE", "/v1/endpoints/web")).status).toBe(409);
    expect((await api("DELETE", "/v1/endpoints/nobody")).status).toBe(404);
    expect((await api("GET", "/v2/health")).status).toBe(404);
    // None of that touched the kernel or the record.
    const list = await api("GET", "/v1/endpoints");
    expect((list.body.endpoints as Json[]).map((e) => e.name)).toEqual(["api1"]);
    expect((await netnsList()).filter((n) => n.startsWith(sb.prefix)).sort()).toEqual([sb.ns("api1"), sb.ns("web")].sort());
    expect((await cli(["plan", "-f", file, "--detailed-exitcode"])).code).toBe(0);
  });

  it("a file-triggered pass keeps the runtime endpoint", async () => {
    save(withBack);
    await waitFor("the back network", async () => (await ipJson(sb.target, ["link", "show"])).some((l: Json) => l.ifname === "bolt-back"), 15_000);
    await waitFor("a pass after the edit", async () => {
      const h = await api("GET", "/v1/health");
      return h.status === 200 && (h.body.last_pass as Json)?.outcome === "noop";
    });
    expect((await ipJson(sb.target, ["link", "show"])).some((l: Json) => l.ifname === "bv-api1")).toBe(true);
    expect(await ping(sb.ns("api1"), "10.84.0.1")).toBe(true);
    expect((await cli(["plan", "-f", file, "--detailed-exitcode"])).code).toBe(0);
  });

  it("bolt apply goes through the daemon while it watches (no lock fight)", async () => {
    const before = await requests("POST /v1/apply");
    // Saved and applied at once: the daemon's own pass and the CLI's apply race for the target.
    save(withBack.replace('subnet = "10.85.0.0/24"', 'subnet = "10.85.0.0/24"\nmtu = 1400'));
    const r = await cli(["apply", "-f", file, "--lock-timeout", "1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(await requests("POST /v1/apply")).toBe(before + 1);
    await waitFor("mtu 1400", async () => (await ipJson(sb.target, ["link", "show", "dev", "bolt-back"]))[0].mtu === 1400);
    const again = await cli(["apply", "-f", file]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe((await cli(["apply", "-f", file, "--no-daemon"])).stdout);
    expect((await cli(["plan", "-f", file, "--detailed-exitcode"])).code).toBe(0);
  });

  it("runtime endpoints survive a restart; without the daemon the CLI plans them too", async () => {
    await stop();
    expect(() => statSync(socket)).toThrow();
    const local = await cli(["plan", "-f", file, "--detailed-exitcode"]);
    expect(local.code, local.stdout + local.stderr).toBe(0);
    await start();
    const list = await api("GET", "/v1/endpoints");
    expect((list.body.endpoints as Json[]).map((e) => e.name)).toEqual(["api1"]);
    expect(((await api("GET", "/v1/health")).body.last_pass as Json).outcome).toBe("noop");
    expect(await ping(sb.ns("api1"), "10.84.0.1")).toBe(true);
  });

  it("detaches: the endpoint and its namespace are gone, the record too", async () => {
    const r = await api("DELETE", "/v1/endpoints/api1");
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect((r.body.plan as Json).changes.map((c: Json) => `${c.action} ${c.address}`)).toEqual([
      `delete resolver:${sb.ns("api1")}/hosts`,
      "delete endpoint:api1",
      `update resolver:${sb.ns("web")}/hosts`,
    ]);
    expect((await ipJson(sb.target, ["link", "show"])).some((l: Json) => l.ifname === "bv-api1")).toBe(false);
    expect(await netnsList()).not.toContain(sb.ns("api1"));
    expect(((await api("GET", "/v1/endpoints")).body.endpoints as Json[]).length).toBe(0);
    const via = await cli(["plan", "-f", file, "--detailed-exitcode"]);
    expect(via.code, via.stdout).toBe(0);
    expect((await cli(["plan", "-f", file, "--detailed-exitcode", "--no-daemon"])).code).toBe(0);
  });

  it("a daemon killed mid-attach is repaired by the next start (journal), the endpoint attached", async () => {
    await stop();
    const signal = join(sb.dir, "hang-reached");
    // The fake ip runs the attach's batch up to the endpoint's addressing, then hangs there.
    await start(sb.fakeEnv(["ip"], { BOLT_HANG_PATTERN: "bv-crash1", BOLT_HANG_SIGNAL: signal, BOLT_HANG_SECONDS: "60" }));
    const attach = api("POST", "/v1/endpoints", { name: "crash1", network: "front" }).catch((e: Error) => e);
    await waitForFile(signal, 60_000, () => daemon.exitCode === null);
    process.kill(-daemon.pid!, "SIGKILL");
    const res = await daemon;
    expect(res.signal).toBe("SIGKILL");
    expect(await attach).toBeInstanceOf(Error);
    const journal = await run(["sqlite3", join(sb.stateDir, "bolt.db"), "SELECT count(*) FROM journal"]);
    if (journal.code === 0) expect(journal.stdout.trim()).toBe("1");
    // The stale socket is replaced; the first pass rolls the half-apply back, then converges.
    await start();
    const h = await api("GET", "/v1/health");
    expect((h.body.last_pass as Json).outcome).toBe("applied");
    const ep = ((await api("GET", "/v1/endpoints")).body.endpoints as Json[]).find((e) => e.name === "crash1");
    expect(ep).toBeDefined();
    expect(await ping(sb.ns("crash1"), "10.84.0.1")).toBe(true);
    expect((await cli(["plan", "-f", file, "--detailed-exitcode", "--no-daemon"])).code).toBe(0);
    expect(readFileSync(file, "utf8")).not.toContain("crash1");
    await stop();
  });
});
