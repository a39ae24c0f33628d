// Two applies on the same target at once: the one holding the lock is held by the fake `ip`
// inside its first write batch until the test releases it; a second with a short
// --lock-timeout fails naming the holder's pid and touches nothing; one with a longer
// timeout waits for the holder to finish, then succeeds.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, bolt, requireBuild, snapshot, waitForFile } from "./harness.js";
import { expectNetwork, expectVeth } from "./checks.js";

const base = `
[networks.front]
subnet = "10.61.0.0/24"
# the lock is the point here, not name discovery's hosts files
discovery = false

[[endpoints]]
name = "web"
network = "front"
`;
const more = `${base}
[[endpoints]]
name = "api"
network = "front"
`;

describe.skipIf(!!SKIP_REASON)("one writer per target", () => {
  const sb = new Sandbox();

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
  });
  afterAll(() => sb.cleanup());

  it("a second apply fails fast with a short timeout and waits with a long one", async () => {
    const first = sb.write("first.toml", base);
    const second = sb.write("second.toml", more);
    const signal = join(sb.dir, "slow-reached");
    const release = join(sb.dir, "slow-release");
    // The slow apply stops inside its first write batch until the test releases it.
    const slow = sb.spawnBolt(["apply", "-f", first], {
      env: sb.fakeEnv(["ip"], {
        BOLT_HANG_PATTERN: "link set dev bolt-front up",
        BOLT_HANG_SIGNAL: signal,
        BOLT_HANG_RELEASE: release,
        BOLT_HANG_SECONDS: "90",
      }),
    });
    await waitForFile(signal, 60_000, () => slow.exitCode === null);
    const during = await snapshot(sb.target);

    const impatient = await sb.bolt(["apply", "-f", second], { lockTimeout: 1 });
    expect(impatient.code).toBe(1);
    expect(impatient.stderr).toContain(`another bolt (pid ${slow.pid}) is changing this target`);
    expect(impatient.stderr).toContain("--lock-timeout");
    expect(await snapshot(sb.target)).toEqual(during);

    // The lock is the target's, not the state dir's: another state dir waits all the same.
    const otherState = join(sb.dir, "other-state");
    const elsewhere = await bolt(["apply", "-f", second, "--netns", sb.target, "--netns-prefix", sb.prefix, "--state-dir", otherState, "--lock-timeout", "1"]);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toContain(`another bolt (pid ${slow.pid}) is changing this target`);
    expect(await snapshot(sb.target)).toEqual(during);

    const patient = sb.bolt(["apply", "-f", second], { lockTimeout: 60 });
    let patientDone = false;
    void patient.then(() => (patientDone = true));
    await new Promise((r) => setTimeout(r, 1500));
    expect(patientDone, "the patient apply must wait while the lock is held").toBe(false);
    expect(slow.exitCode).toBeNull();
    writeFileSync(release, "");
    const slowRes = await slow;
    expect(slowRes.exitCode, String(slowRes.stderr)).toBe(0);
    const p = await patient;
    expect(p.code, p.stderr).toBe(0);
    // It planned only once the slow apply was done: web existed, so only api was added.
    expect(p.stdout).toContain("Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy.");

    await expectNetwork(sb.target, { name: "front", bridge: "bolt-front", address: "10.61.0.1/24", mtu: 1500 });
    await expectVeth(sb.target, {
      name: "web",
      hostIf: "bv-web",
      bridge: "bolt-front",
      netns: sb.ns("web"),
      ip: "10.61.0.2/24",
      gateway: "10.61.0.1",
      mtu: 1500,
    });
    await expectVeth(sb.target, {
      name: "api",
      hostIf: "bv-api",
      bridge: "bolt-front",
      netns: sb.ns("api"),
      ip: "10.61.0.3/24",
      gateway: "10.61.0.1",
      mtu: 1500,
    });
    expect((await sb.planExit(second, ["--deep"])).code).toBe(0);
  });
});
