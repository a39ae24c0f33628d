// A failure injected mid-apply (fake `ip`/`sysctl` first on PATH) rolls back exactly: the
// kernel really did the earlier lines of the batch, and after the error every namespace reads
// back identical to before the apply; plan shows the same work again; a clean apply converges.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, ping, pristineSandbox, requireBuild, sysctlGet, world } from "./harness.js";
import { expectVeth } from "./checks.js";

const config = (net: string, sysctl = false) => `
[networks.front]
subnet = "${net}.0/24"

[networks.back]
subnet = "10.62.0.0/24"

[[endpoints]]
name = "web"
network = "front"

[[endpoints]]
name = "api"
network = "front"

[[endpoints]]
name = "db"
network = "back"
${sysctl ? '\n[sysctl]\n"net.ipv4.ip_forward" = 1\n' : ""}`;

describe.skipIf(!!SKIP_REASON)("rollback after an ip batch fails mid-apply", () => {
  const s = pristineSandbox(config("10.61.0"));
  const sb = s.sb;

  /** Apply with a failing line inserted before the first batch line containing `pattern`. */
  async function faultyApply(pattern: string) {
    const hit = join(sb.dir, `hit-${Math.random().toString(36).slice(2)}`);
    const r = await sb.bolt(["apply", "-f", s.file], { env: sb.fakeEnv(["ip"], { BOLT_FAULT_PATTERN: pattern, BOLT_FAULT_HIT: hit }) });
    // The fault must really have fired, else this test proves nothing.
    expect(existsSync(hit), `fault pattern "${pattern}" never matched a batch line`).toBe(true);
    expect(readFileSync(hit, "utf8")).toMatch(/^line [2-9]\d*:/);
    return r;
  }

  it("a failing first apply leaves the namespace as it was", async () => {
    const planned = await sb.planned(s.file);
    // api's address line runs in api's namespace after its netns, veth and port lines.
    const r = await faultyApply("address add 10.61.0.3/24 broadcast + dev eth0");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/apply failed at step \d+\/\d+ \(create endpoint "api"\): "address add 10\.61\.0\.3\/24 broadcast \+ dev eth0"/);
    expect(r.stderr).toContain('Cannot find device "bolt-fault-nonexistent"');
    expect(r.stderr).toContain("rolled back, the kernel is as it was");
    expect(await world(sb)).toEqual(s.pristine);

    const plan = await sb.planExit(s.file);
    expect(plan.code).toBe(2);
    expect(plan.stderr).not.toContain("interrupted");
    expect(await sb.planned(s.file)).toEqual(planned);
    expect(planned).toContain("create endpoint:api");
  });

  it("the same apply without the fault then succeeds", async () => {
    const r = await sb.bolt(["apply", "-f", s.file]);
    expect(r.code, r.stderr).toBe(0);
    await expectVeth(sb.target, {
      name: "api",
      hostIf: "bv-api",
      bridge: "bolt-front",
      netns: sb.ns("api"),
      ip: "10.61.0.3/24",
      gateway: "10.61.0.1",
      mtu: 1500,
    });
    expect(await ping(sb.ns("web"), "10.61.0.3")).toBe(true);
    expect((await sb.planExit(s.file)).code).toBe(0);
  });

  it("a failing update (subnet change) restores the applied state exactly", async () => {
    const applied = await world(sb);
    const show = (await sb.bolt(["show", "--json"])).stdout;
    sb.write("bolt-network.toml", config("10.72.0"));
    const planned = await sb.planned(s.file);
    // By now the bridge has its new address, web is moved and api has lost its old address
    // (the line before the fault; the old one goes first): all of it must go back.
    const r = await faultyApply("address add 10.72.0.3/24 broadcast + dev eth0");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/apply failed at step \d+\/\d+ \(update endpoint "api"\)/);
    expect(r.stderr).toContain("rolled back, the kernel is as it was");
    expect(await world(sb)).toEqual(applied);
    expect((await sb.bolt(["show", "--json"])).stdout).toBe(show);
    expect(await ping(sb.ns("web"), "10.61.0.3")).toBe(true);

    const plan = await sb.planExit(s.file);
    expect(plan.code).toBe(2);
    expect(await sb.planned(s.file)).toEqual(planned);
    expect(planned).toEqual(expect.arrayContaining(["update network:front", "update endpoint:web", "update endpoint:api"]));
    const ok = await sb.bolt(["apply", "-f", s.file]);
    expect(ok.code, ok.stderr).toBe(0);
    await expectVeth(sb.target, {
      name: "api",
      hostIf: "bv-api",
      bridge: "bolt-front",
      netns: sb.ns("api"),
      ip: "10.72.0.3/24",
      gateway: "10.72.0.1",
      mtu: 1500,
    });
    expect(await ping(sb.ns("web"), "10.72.0.3")).toBe(true);
    expect((await sb.planExit(s.file, ["--deep"])).code).toBe(0);
  });
});

describe.skipIf(!!SKIP_REASON)("rollback after a sysctl write fails", () => {
  const s = pristineSandbox(config("10.61.0", true));
  const sb = s.sb;

  it("undoes the bridges and endpoints already made when the sysctl stage fails", async () => {
    const forward = await sysctlGet(sb.target, "net.ipv4.ip_forward");
    const planned = await sb.planned(s.file);
    // sysctl runs last (after every ip batch): all the ip work is done when it fails.
    const r = await sb.bolt(["apply", "-f", s.file], { env: sb.fakeEnv(["sysctl"]) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/apply failed at step \d+\/\d+ \(create sysctl "net\.ipv4\.ip_forward"\)/);
    expect(r.stderr).toContain("injected fault");
    expect(r.stderr).toContain("rolled back, the kernel is as it was");
    expect(await world(sb)).toEqual(s.pristine);
    expect(await sysctlGet(sb.target, "net.ipv4.ip_forward")).toBe(forward);

    const plan = await sb.planExit(s.file);
    expect(plan.code).toBe(2);
    expect(await sb.planned(s.file)).toEqual(planned);
    const ok = await sb.bolt(["apply", "-f", s.file]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(await sysctlGet(sb.target, "net.ipv4.ip_forward")).toBe("1");
    expect((await sb.planExit(s.file)).code).toBe(0);
  });
});

const edge = (bridge?: string) => `
[networks.edge]
${bridge ? `bridge = "${bridge}"\n` : ""}subnet = "10.63.0.0/24"

[[endpoints]]
name = "gw"
network = "edge"
`;

describe.skipIf(!!SKIP_REASON)("rollback of a replaced bridge whose endpoint stays", () => {
  const sb = new Sandbox();
  let file: string;

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    file = sb.write("bolt-network.toml", edge());
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => sb.cleanup());

  // The replace deletes bolt-edge first (its port bv-gw loses its master), creates br-edge and
  // moves bv-gw there; the undo of the move (back to bolt-edge) runs before bolt-edge exists
  // again, and ip aborts that whole forced batch ("Device does not exist"): the undo must try
  // again once bolt-edge is back, and put bv-gw back on it.
  it("after the endpoint moved to the new bridge (nft fails last)", async () => {
    const applied = await world(sb);
    sb.write("bolt-network.toml", edge("br-edge"));
    const hit = join(sb.dir, "nft-hit");
    const r = await sb.bolt(["apply", "-f", file], { env: sb.fakeEnv(["nft"], { BOLT_NFT_FAIL_HIT: hit }) });
    expect(existsSync(hit), "the nft fault never fired").toBe(true);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("injected fault");
    expect(r.stderr).toContain("rolled back, the kernel is as it was");
    expect(await world(sb)).toEqual(applied);
    expect(await ping(sb.ns("gw"), "10.63.0.1")).toBe(true);
  });

  it("before the endpoint moved (the move itself fails)", async () => {
    sb.write("bolt-network.toml", edge());
    const applied = await world(sb);
    sb.write("bolt-network.toml", edge("br-edge"));
    const hit = join(sb.dir, `hit-${Math.random().toString(36).slice(2)}`);
    const r = await sb.bolt(["apply", "-f", file], { env: sb.fakeEnv(["ip"], { BOLT_FAULT_PATTERN: "master br-edge", BOLT_FAULT_HIT: hit }) });
    expect(existsSync(hit), "the ip fault never fired").toBe(true);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("rolled back, the kernel is as it was");
    // Deleting bolt-edge detached bv-gw; its undo attaches it again.
    expect(await world(sb)).toEqual(applied);
    expect(await ping(sb.ns("gw"), "10.63.0.1")).toBe(true);
    const ok = await sb.bolt(["apply", "-f", file]);
    expect(ok.code, ok.stderr).toBe(0);
    expect((await sb.planExit(file)).code).toBe(0);
  });
});

describe.skipIf(!!SKIP_REASON)("a hung tool fails its step and the apply rolls back", () => {
  const s = pristineSandbox(config("10.61.0"));
  const sb = s.sb;

  it("names the tool, the namespace and the time waited", async () => {
    const signal = join(sb.dir, "hang");
    const env = sb.fakeEnv(["ip"], {
      BOLT_HANG_PATTERN: "address add 10.61.0.3/24 broadcast + dev eth0",
      BOLT_HANG_SIGNAL: signal,
      BOLT_HANG_SECONDS: "60",
      BOLT_TOOL_TIMEOUT: "2",
    });
    const t0 = Date.now();
    const r = await sb.bolt(["apply", "-f", s.file], { env });
    expect(existsSync(signal), "the hang never started").toBe(true);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`apply failed at step \\d+/\\d+ \\(create endpoint "api"\\).*ip in netns ${sb.ns("api")} did not finish within 2 s and was killed`),
    );
    expect(r.stderr).toContain("rolled back, the kernel is as it was");
    expect(Date.now() - t0).toBeLessThan(50_000);
    expect(await world(sb)).toEqual(s.pristine);
    // The fake's sleep was started by this test's bolt: stop it (by the pid it wrote).
    for (const pid of readFileSync(signal, "utf8").trim().split(/\s+/).map(Number)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  });
});
