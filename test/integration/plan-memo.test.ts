// The warm daemon's plan memo (src/core/plan-memo.ts) must never make a plan wrong: a no-op
// plan comes back without reading what the kernel monitors and inotify cover, and every kind
// of change — made by hand, with no event at all (a sysctl), through /etc/netns files, by
// removing a namespace, while the monitor was killed — is in the very next plan.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResultPromise } from "execa";
import { SKIP_REASON, Sandbox, ping, requireBuild, run } from "./harness.js";
import type { Json } from "./harness.js";
import { waitFor } from "./watch-helpers.js";
import { apiRequest } from "../../src/daemon/socket.js";

const config = `
[networks.memo]
subnet = "10.87.0.0/24"

[[endpoints]]
name = "web"
network = "memo"
ip = "10.87.0.10"

[[endpoints]]
name = "db"
network = "memo"
ip = "10.87.0.11"

# tcp_syncookies is not in netconf: changing it sends rtnetlink nothing (ip_forward would)
[sysctl]
"net.ipv4.tcp_syncookies" = 2
`;

/** Stops the daemon this test started (by its PID), then removes the sandbox. */
async function stopThenClean(daemon: ResultPromise | undefined, sb: Sandbox): Promise<void> {
  if (daemon?.pid && daemon.exitCode === null) {
    process.kill(daemon.pid, "SIGTERM");
    await daemon.catch(() => {});
  }
  await sb.cleanup();
}

describe.skipIf(!!SKIP_REASON)("the daemon's plan memo", () => {
  const sb = new Sandbox();
  let file: string;
  let socket: string;
  let daemon: ResultPromise;
  let env: Record<string, string>;
  const api = (method: string, path: string, body?: unknown) => apiRequest(socket, method, path, body, 60_000);
  const memo = async () => (await api("GET", "/v1/stats?traffic=0")).body.plan_memo as { hits: number; misses: number };
  /** A plan through the daemon: its exit code (2: changes) and text. */
  const plan = async () => {
    const r = await sb.bolt(["plan", "-f", file, "--detailed-exitcode"], { env });
    expect([0, 2], r.stderr).toContain(r.code);
    return r;
  };
  const converge = async () => {
    const r = await sb.bolt(["apply", "-f", file], { env });
    expect(r.code, r.stderr).toBe(0);
    expect((await plan()).code).toBe(0);
    await memoHit();
  };
  /** The memo gives the no-op plan back (once the apply's own events have arrived and the monitors run). */
  const memoHit = () =>
    waitFor(
      "a no-op plan from the memo",
      async () => {
        const before = (await memo()).hits;
        expect((await plan()).code).toBe(0);
        return (await memo()).hits > before;
      },
      10_000,
    );
  const web = () => `${sb.prefix}web`;

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    ({ env, socket } = sb.privateRunDir());
    file = sb.write("memo.toml", config);
    daemon = sb.spawnBolt(["daemon", "--json"], { env });
    daemon.catch(() => {});
    await waitFor("the API", async () => (await api("GET", "/v1/health").catch(() => ({ status: 0 }))).status === 200, 30_000);
    const r = await sb.bolt(["apply", "-f", file], { env });
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => stopThenClean(daemon, sb));

  it("repeated no-op plans come from the memo, byte for byte what the CLI plans itself", async () => {
    await memoHit();
    const via = await plan();
    const local = await sb.bolt(["plan", "-f", file, "--detailed-exitcode", "--no-daemon"], { env });
    expect(local.code).toBe(0);
    expect(via.stdout).toBe(local.stdout);
    expect(via.stderr).toBe(local.stderr);
  });

  it("a sysctl changed by hand (no event exists for it) is in the next plan", async () => {
    await converge();
    const w = await run(["ip", "netns", "exec", sb.target, "sysctl", "-w", "net.ipv4.tcp_syncookies=1"]);
    expect(w.code, w.stderr).toBe(0);
    const p = await plan();
    expect(p.code).toBe(2);
    expect(p.stdout).toContain("net.ipv4.tcp_syncookies");
    await converge();
    expect((await run(["ip", "netns", "exec", sb.target, "sysctl", "-n", "net.ipv4.ip_forward"])).stdout.trim()).toBe("1");
  });

  it("an endpoint's hosts file edited by hand is in the next plan (inotify on /etc/netns)", async () => {
    await converge();
    const hosts = join("/etc/netns", web(), "hosts");
    expect(existsSync(hosts)).toBe(true);
    appendFileSync(hosts, "10.87.0.99 intruder\n");
    await waitFor("the plan to see the edited hosts file", async () => (await plan()).code === 2, 5_000);
    await converge();
    expect(readFileSync(hosts, "utf8")).not.toContain("intruder");
  });

  it("an endpoint namespace removed by hand is in the next plan", async () => {
    await converge();
    expect((await run(["ip", "netns", "del", web()])).code).toBe(0);
    await waitFor(
      "the plan to recreate web",
      async () => {
        const p = await plan();
        return p.code === 2 && p.stdout.includes("web");
      },
      5_000,
    );
    await converge();
    await ping(web(), "10.87.0.11");
  });

  it("a change made while the kernel monitor is down is in the next plan", async () => {
    await converge();
    const kids = (await run(["pgrep", "-P", String(daemon.pid)])).stdout.split("\n").filter(Boolean);
    const argvOf = (pid: string) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      } catch {
        return [];
      }
    };
    // setpriv execs ip: the monitor is the daemon's own child, started by this test's daemon
    const mon = kids.find((p) => argvOf(p).includes("monitor") && argvOf(p).includes("link"));
    expect(mon, `monitor among ${kids.map((k) => argvOf(k).join(" ")).join(" | ")}`).toBeDefined();
    process.kill(Number(mon), "SIGKILL");
    await run(["ip", "-n", sb.target, "link", "set", "dev", "bolt-memo", "mtu", "1400"]);
    const p = await plan();
    expect(p.code).toBe(2);
    expect(p.stdout).toContain("mtu");
    await converge();
    const links = JSON.parse((await run(["ip", "-j", "-n", sb.target, "link", "show", "bolt-memo"])).stdout) as Json[];
    expect(links[0]!.mtu).toBe(1500);
  });
});

// The same memo for `bolt watch`'s passes: a pass whose intent is the same (a SIGHUP here; for
// a mesh host, a store change that changes nothing of its own) reads only what no event covers.
describe.skipIf(!!SKIP_REASON)("the watch daemon's pass memo", () => {
  const sb = new Sandbox();
  let socket: string;
  let daemon: ResultPromise;
  let env: Record<string, string>;
  const stats = async () => (await apiRequest(socket, "GET", "/v1/stats?traffic=0", undefined, 60_000)).body as Json;
  const hup = async () => {
    const before = (await stats()).passes as number;
    process.kill(daemon.pid!, "SIGHUP");
    await waitFor("the SIGHUP pass", async () => ((await stats()).passes as number) > before, 20_000, 50);
    return (await stats()).last_pass as Json;
  };
  const syncookies = async () => (await run(["ip", "netns", "exec", sb.target, "sysctl", "-n", "net.ipv4.tcp_syncookies"])).stdout.trim();

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    ({ env, socket } = sb.privateRunDir());
    const file = sb.write("memo.toml", config);
    daemon = sb.spawnBolt(["watch", "-f", file, "--resync", "300s", "--debounce", "100ms", "--json"], { env });
    daemon.catch(() => {});
    await waitFor("the first pass", async () => !!((await stats().catch(() => ({}))) as Json).last_success_at, 30_000);
  });
  afterAll(() => stopThenClean(daemon, sb));

  it("a pass with nothing new comes from the memo; a sysctl changed by hand (no event) is repaired by the next pass", async () => {
    // The apply's own events arrive after it: passes until one is remembered, then one that hits.
    await waitFor(
      "a pass from the memo",
      async () => {
        const before = ((await stats()).pass_memo as Json).hits as number;
        expect((await hup()).outcome).toBe("noop");
        return (((await stats()).pass_memo as Json).hits as number) > before;
      },
      15_000,
    );
    expect(await syncookies()).toBe("2");
    await run(["ip", "netns", "exec", sb.target, "sysctl", "-w", "net.ipv4.tcp_syncookies=1"]);
    // Nothing but this SIGHUP makes a pass: a memo that skipped the sysctl read would leave it at 1.
    process.kill(daemon.pid!, "SIGHUP");
    await waitFor("the sysctl repaired", async () => (await syncookies()) === "2", 10_000, 50);
    const last = (await stats()).last_pass as Json;
    expect([last.outcome, last.changes]).toEqual(["applied", 1]);
  });
});
