// kill -9 in the middle of an apply: the fake `ip` runs the batch lines before a marker,
// signals, and sleeps; the test kills bolt (and that fake, its own child) at that moment.
// The journal written before each wave lets `bolt rollback` — or simply the next
// `bolt apply` — put the kernel back exactly as it was before the killed apply.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeRunJournal } from "../../src/state/run-copy.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, must, ping, plannedOf, pristineSandbox, requireBuild, waitForFile, world } from "./harness.js";
import { expectVeth } from "./checks.js";

const config = (net: string) => `
[networks.front]
subnet = "${net}.0/24"

[[endpoints]]
name = "web"
network = "front"

[[endpoints]]
name = "api"
network = "front"
`;

/** Running, not merely a zombie waiting for whoever adopted it (init) to reap it. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/**
 * Starts `bolt apply` with the hanging fake `ip`, waits until the lines before `marker` ran,
 * then kills bolt with SIGKILL, and its process group (the sleeping fake) after it.
 */
async function killMidApply(sb: Sandbox, file: string, marker: string): Promise<void> {
  const signal = join(sb.dir, `reached-${Math.random().toString(36).slice(2)}`);
  const child = sb.spawnBolt(["apply", "-f", file], {
    env: sb.fakeEnv(["ip"], { BOLT_HANG_PATTERN: marker, BOLT_HANG_SIGNAL: signal, BOLT_HANG_SECONDS: "30" }),
  });
  await waitForFile(signal, 60_000, () => child.exitCode === null);
  const [wrapper, sleeper] = readFileSync(signal, "utf8").trim().split(" ").map(Number);
  process.kill(child.pid!, "SIGKILL");
  const res = await child;
  expect(res.signal, `bolt should have been killed mid-apply; it exited: ${res.stderr}`).toBe("SIGKILL");
  process.kill(-child.pid!, "SIGKILL");
  await new Promise((r) => setTimeout(r, 200));
  expect(alive(wrapper!) || alive(sleeper!), "the fake ip outlived the kill").toBe(false);
}

describe.skipIf(!!SKIP_REASON)("kill -9 mid-apply, then bolt rollback", () => {
  const s = pristineSandbox(config("10.61.0"));
  const sb = s.sb;

  let planned: string[];

  it("leaves a half-built namespace that plan warns about", async () => {
    planned = await sb.planned(s.file);
    // api's inside batch: lo and eth0 lines have run, its address not; web's batch is done.
    await killMidApply(sb, s.file, "address add 10.61.0.3/24 broadcast + dev eth0");
    expect(await sb.mine()).toEqual([sb.target, sb.ns("api"), sb.ns("web")].sort());
    expect(await world(sb)).not.toEqual(s.pristine);
    const plan = await sb.planExit(s.file);
    expect(plan.stderr).toContain("an interrupted apply left a journal");
    expect(plan.code).toBe(2);
  });

  it("bolt rollback restores the namespace exactly", async () => {
    const r = await sb.bolt(["rollback"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Rolled back the interrupted apply .* \(pid \d+\)/);
    expect(await world(sb)).toEqual(s.pristine);
    const again = await sb.bolt(["rollback"]);
    expect(again.stdout).toContain("Nothing to roll back");
    const plan = await sb.planExit(s.file);
    expect(plan.stderr).not.toContain("interrupted");
    expect(await sb.planned(s.file)).toEqual(planned);
  });

  it("a later apply converges", async () => {
    const r = await sb.bolt(["apply", "-f", s.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await ping(sb.ns("web"), "10.61.0.3")).toBe(true);
    expect((await sb.planExit(s.file, ["--deep"])).code).toBe(0);
  });
});

describe.skipIf(!!SKIP_REASON)("kill -9 mid-update, then the next apply repairs first", () => {
  const sb = new Sandbox();
  let file: string;

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    file = sb.write("bolt-network.toml", config("10.61.0"));
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => sb.cleanup());

  it("rolls the killed update back, then applies the config", async () => {
    sb.write("bolt-network.toml", config("10.72.0"));
    const planned = await sb.planned(file);
    expect(planned).toEqual(expect.arrayContaining(["update network:front", "update endpoint:web", "update endpoint:api"]));
    // Bridge re-addressed, web moved, api has its new address but still the old one too.
    await killMidApply(sb, file, "address del 10.61.0.3/24 dev eth0");
    const r = await sb.bolt(["apply", "--json", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("rolled back an interrupted apply before continuing");
    // It planned from the repaired kernel: the same work as before the killed apply.
    expect(plannedOf(r.stdout)).toEqual(planned);
    for (const [name, ip] of [
      ["web", "10.72.0.2/24"],
      ["api", "10.72.0.3/24"],
    ] as const) {
      await expectVeth(sb.target, { name, hostIf: `bv-${name}`, bridge: "bolt-front", netns: sb.ns(name), ip, gateway: "10.72.0.1", mtu: 1500 });
    }
    expect(await ping(sb.ns("web"), "10.72.0.3")).toBe(true);
    const plan = await sb.planExit(file, ["--deep"]);
    expect(plan.code, plan.stdout).toBe(0);
    expect(plan.stderr).toBe("");
  });
});

describe.skipIf(!!SKIP_REASON)("kill -9 between `ip netns add` and the veth, the state dir and the journal's run-dir copy lost", () => {
  const sb = new Sandbox();
  let file: string;
  // With no journal anywhere, the namespaces' own mark is all that says they are bolt's.
  const loseState = () => {
    rmSync(sb.stateDir, { recursive: true, force: true });
    writeRunJournal(sb.target, undefined);
  };

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    file = sb.write("bolt-network.toml", config("10.61.0"));
  });
  afterAll(() => sb.cleanup());

  it("the namespaces bolt created are recognised from their mark: destroy removes them", async () => {
    await killMidApply(sb, file, "link add name bv-web");
    // bolt made the endpoint namespaces (and marked them), but no veth points at them yet.
    expect(await sb.mine()).toContain(sb.ns("web"));
    loseState();
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/- endpoint "web"/);
    expect(await sb.mine()).toEqual([sb.target]);
  });

  it("an apply after the same loss replaces the orphans and converges", async () => {
    await killMidApply(sb, file, "link add name bv-web");
    loseState();
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    expect((await sb.planExit(file, ["--deep"])).code).toBe(0);
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(await sb.mine()).toEqual([sb.target]);
  });
});

describe.skipIf(!!SKIP_REASON)("kill -9 between `ip netns add` and the namespace's mark, and the state dir lost", () => {
  const s = pristineSandbox(config("10.61.0"));
  const sb = s.sb;

  const unmarkedOrphan = async () => {
    await killMidApply(sb, s.file, "link set dev lo alias bolt1,ep=web");
    // The namespace exists and carries no mark: only the journal knows it is bolt's.
    expect(await sb.mine()).toContain(sb.ns("web"));
    expect(await must(["ip", "-n", sb.ns("web"), "-j", "link", "show", "dev", "lo"])).not.toContain("bolt1");
    rmSync(sb.stateDir, { recursive: true, force: true });
  };

  it("plan says an interrupted apply left a journal (the run dir's copy); destroy undoes it: nothing left", async () => {
    await unmarkedOrphan();
    const plan = await sb.planExit(s.file);
    expect(plan.stderr).toContain("an interrupted apply left a journal");
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(/rolled back an interrupted apply/);
    expect(await sb.mine()).toEqual([sb.target]);
    expect(await world(sb)).toEqual(s.pristine);
  });

  it("an apply after the same loss repairs first and converges; destroy leaves the namespace as it was", async () => {
    await unmarkedOrphan();
    const r = await sb.bolt(["apply", "-f", s.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rolled back an interrupted apply/);
    expect(await ping(sb.ns("web"), "10.61.0.3")).toBe(true);
    expect((await sb.planExit(s.file, ["--deep"])).code).toBe(0);
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(await world(sb)).toEqual(s.pristine);
  });
});
