// Plans for CI on a real namespace: a saved plan applies exactly, or refuses when the kernel
// changed since; an exported state plans offline (no kernel tool runs) exactly as the live
// plan; markdown for the pull request; the graph without root.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOLT_BIN, Sandbox, SKIP_REASON, must, plannedOf, requireBuild, run, snapshot } from "./harness.js";
import type { Json } from "./harness.js";
import { expectNetwork } from "./checks.js";
import { noKernelEnv } from "./watch-helpers.js";

/** Whether user nobody can read `path` (every directory above it searchable by others). */
function nobodyReaches(path: string): boolean {
  return spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "test", "-r", path]).status === 0;
}

const v1 = `
[networks.a]
subnet = "10.95.0.0/24"

[[endpoints]]
name = "web"
network = "a"

[sysctl]
"net.ipv4.ip_forward" = 1
`;
const v2 = `
[networks.a]
subnet = "10.95.0.0/24"
mtu = 1450

[[endpoints]]
name = "web"
network = "a"

[[endpoints]]
name = "api"
network = "a"

[networks.b]
subnet = "10.96.0.0/24"

[sysctl]
"net.ipv4.ip_forward" = 1
"net.ipv4.conf.all.forwarding" = 1
`;

describe.skipIf(!!SKIP_REASON)("saved plans, exported state, offline plans", () => {
  const sb = new Sandbox();
  let f1: string;
  let f2: string;

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    f1 = sb.write("v1.toml", v1);
    f2 = sb.write("v2.toml", v2);
    const r = await sb.bolt(["apply", "-f", f1]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => sb.cleanup());

  it("a stale saved plan is refused, naming what changed, and writes nothing", async () => {
    const plan = `${sb.dir}/stale.json`;
    const p = await sb.bolt(["plan", "-f", f2, "--out", plan]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain(`Saved the plan to ${plan}`);
    // Someone changes the kernel after the review.
    await must(["ip", "-n", sb.target, "link", "set", "dev", "bolt-a", "mtu", "1300"]);
    const before = await snapshot(sb.target);
    const r = await sb.bolt(["apply", plan]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the saved plan .*stale\.json is stale: netns bolt-t-\w+ changed since it was made/);
    expect(r.stderr).toContain("network:a changed mtu (1500 → 1300)");
    expect(r.stderr).toContain("Nothing was applied");
    expect(await snapshot(sb.target)).toEqual(before);
  });

  it("a fresh saved plan applies exactly its changes", async () => {
    const plan = `${sb.dir}/fresh.json`;
    const p = await sb.bolt(["plan", "-f", f2, "--out", plan, "--json"]);
    expect(p.code, p.stderr).toBe(0);
    const saved = JSON.parse(readFileSync(plan, "utf8"));
    expect(saved.changes.map((c: Json) => `${c.action} ${c.address}`).sort()).toEqual(plannedOf(p.stdout));
    const r = await sb.bolt(["apply", plan, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(plannedOf(r.stdout)).toEqual(plannedOf(p.stdout));
    await expectNetwork(sb.target, { name: "a", bridge: "bolt-a", address: "10.95.0.1/24", mtu: 1450 });
    await expectNetwork(sb.target, { name: "b", bridge: "bolt-b", address: "10.96.0.1/24", mtu: 1500 });
    expect((await sb.planExit(f2)).code).toBe(0);
    // Applied once, the same plan is stale (the kernel is no longer what it was planned against).
    const again = await sb.bolt(["apply", plan]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is stale/);
  });

  it("an exported state plans offline exactly like the live plan, with no kernel tool run", async () => {
    const exp = await sb.bolt(["state", "export", "-f", f2]);
    expect(exp.code, exp.stderr).toBe(0);
    const host = sb.write("host.json", exp.stdout);
    const state = JSON.parse(exp.stdout);
    expect(state.format).toBe("bolt-state");
    expect(state.resources.map((r: Json) => r.id)).toEqual(
      expect.arrayContaining(["network:a", "network:b", "endpoint:web", "endpoint:api", "nft:inet bolt", "sysctl:net.ipv4.ip_forward"]),
    );
    // A change for the pull request: v1 again (destroys b and api, MTU back).
    const live = await sb.bolt(["plan", "-f", f1, "--json"]);
    expect(live.code, live.stderr).toBe(0);
    const { env, calls } = noKernelEnv(sb.dir);
    const off = await sb.bolt(["plan", "-f", f1, "--json", "--state", host], { env });
    expect(off.code, off.stderr).toBe(0);
    expect(calls()).toEqual([]);
    expect(JSON.parse(off.stdout).changes).toEqual(JSON.parse(live.stdout).changes);
    expect(plannedOf(off.stdout)).toEqual(
      [
        "delete endpoint:api",
        "delete network:b",
        "delete sysctl:net.ipv4.conf.all.forwarding",
        "update network:a",
        "update endpoint:web",
        "update nft:inet bolt",
        // name discovery: api's hosts file goes, web's loses api
        `delete resolver:${sb.ns("api")}/hosts`,
        `update resolver:${sb.ns("web")}/hosts`,
      ].sort(),
    );
    // Same exit codes for gating: 2 = changes.
    const gate = await sb.bolt(["plan", "-f", f1, "--state", host, "--detailed-exitcode", "--format", "markdown"], { env });
    expect(gate.code).toBe(2);
    expect(gate.stdout).toContain("**Plan: 0 to add, 4 to change, 0 to replace, 4 to destroy.**");
    expect(gate.stdout).toContain("| `- destroy` | `network.b` |");
    expect(gate.stdout).toMatch(/against the state of `[^`]+` exported \d{4}-/);
    const same = await sb.bolt(["plan", "-f", f2, "--state", host, "--detailed-exitcode"], { env });
    expect(same.code, same.stdout + same.stderr).toBe(0);
  });

  // No root either: the same plan as user nobody, from a world-readable copy. Only where nobody
  // can reach the checkout at all (CI clones into a private `mktemp -d` directory).
  it.skipIf(!nobodyReaches(BOLT_BIN))("the offline plan also runs as an unprivileged user (nobody)", async () => {
    const host = sb.write("host-nobody.json", (await sb.bolt(["state", "export", "-f", f2])).stdout);
    const live = await sb.bolt(["plan", "-f", f1, "--json"]);
    const pub = mkdtempSync(join(tmpdir(), "bolt-ci-"));
    try {
      chmodSync(pub, 0o755);
      for (const [from, to] of [
        [f1, "v1.toml"],
        [host, "host.json"],
      ] as const) {
        copyFileSync(from, join(pub, to));
        chmodSync(join(pub, to), 0o644);
      }
      const asNobody = await run([
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "node",
        BOLT_BIN,
        "plan",
        "-f",
        join(pub, "v1.toml"),
        "--state",
        join(pub, "host.json"),
        "--netns-prefix",
        sb.prefix,
        "--json",
      ]);
      expect(asNobody.code, asNobody.stderr).toBe(0);
      expect(JSON.parse(asNobody.stdout).changes.map((c: Json) => `${c.action} ${c.address}`)).toEqual(
        JSON.parse(live.stdout).changes.map((c: Json) => `${c.action} ${c.address}`),
      );
    } finally {
      rmSync(pub, { recursive: true, force: true });
    }
  });

  it("--state none plans every resource as new; a plan made offline applies on the host", async () => {
    const { env, calls } = noKernelEnv(sb.dir);
    const none = await sb.bolt(["plan", "-f", f1, "--state", "none", "--json"], { env });
    expect(none.code, none.stderr).toBe(0);
    expect(plannedOf(none.stdout)).toEqual([
      "create endpoint:web",
      "create network:a",
      "create nft:inet bolt",
      `create resolver:${sb.ns("web")}/hosts`,
      "create sysctl:net.ipv4.ip_forward",
    ]);
    // CI plans against the exported state and saves; the host applies exactly that.
    const host = sb.write("host2.json", (await sb.bolt(["state", "export", "-f", f1])).stdout);
    const plan = `${sb.dir}/ci.json`;
    const p = await sb.bolt(["plan", "-f", f1, "--state", host, "--out", plan], { env });
    expect(p.code, p.stderr).toBe(0);
    expect(calls()).toEqual([]);
    const r = await sb.bolt(["apply", plan]);
    expect(r.code, r.stderr).toBe(0);
    await expectNetwork(sb.target, { name: "a", bridge: "bolt-a", address: "10.95.0.1/24", mtu: 1500 });
    expect((await sb.planExit(f1)).code).toBe(0);
  });

  it("graph draws the desired state offline (dot and mermaid)", async () => {
    const { env, calls } = noKernelEnv(sb.dir);
    const dot = await sb.bolt(["graph", "-f", f2, "--format", "dot"], { env });
    expect(dot.code, dot.stderr).toBe(0);
    expect(dot.stdout).toContain('"network:a" -> "endpoint:web";');
    expect(dot.stdout).toContain('"network:a" -> "endpoint:api";');
    const mm = await sb.bolt(["graph", "-f", f2, "--format", "mermaid"], { env });
    expect(mm.stdout).toMatch(/^graph LR\n/);
    expect(mm.stdout).toMatch(/n\d+ --> n\d+/);
    expect(calls()).toEqual([]);
  });
});
