// Commit-confirmed apply on a real namespace: without `bolt confirm` the previous revision comes
// back when the timer runs out, even when the applying CLI was killed (before or in the middle
// of its apply); confirmed in time, the change stays. History and `rollback --to` too.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, ipJson, requireBuild, snapshot, waitForFile } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";
import { expectNetwork } from "./checks.js";
import { sleep, waitFor } from "./watch-helpers.js";

const v1 = `
[networks.a]
subnet = "10.91.0.0/24"

[[endpoints]]
name = "web"
network = "a"
`;
// v2 changes a in place (MTU, also the endpoint's) and adds b.
const v2 = `
[networks.a]
subnet = "10.91.0.0/24"
mtu = 1400

[[endpoints]]
name = "web"
network = "a"

[networks.b]
subnet = "10.92.0.0/24"
`;

describe.skipIf(!!SKIP_REASON)("apply --confirm-timeout, confirm, history, rollback --to", () => {
  const sb = new Sandbox();
  let f1: string;
  let f2: string;
  let s1: Snapshot;

  const history = async () => {
    const r = await sb.bolt(["history", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout).revisions as Json[];
  };
  const hasB = async () => (await ipJson(sb.target, ["link", "show"])).some((l: Json) => l.ifname === "bolt-b");
  /** Kills a CLI started with spawnBolt and everything in its process group (not the detached timer). */
  const killGroup = (pid: number) => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  };

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    f1 = sb.write("v1.toml", v1);
    f2 = sb.write("v2.toml", v2);
    const r = await sb.bolt(["apply", "-f", f1]);
    expect(r.code, r.stderr).toBe(0);
    s1 = await snapshot(sb.target);
  });
  afterAll(async () => {
    // The detached timer's own log, for a failure's post-mortem.
    if (process.env.BOLT_TEST_DAEMON_LOG)
      await sb
        .bolt(["history", "--all"])
        .then((h) =>
          writeFileSync(
            process.env.BOLT_TEST_DAEMON_LOG!,
            `${h.stdout}\n${existsSync(`${sb.stateDir}/confirm-timer.log`) ? readFileSync(`${sb.stateDir}/confirm-timer.log`, "utf8") : ""}`,
          ),
        );
    await sb.cleanup();
  });

  it("not confirmed, CLI killed: the previous revision is restored when the timer runs out", async () => {
    const cli = sb.spawnBolt(["apply", "-f", f2, "--confirm-timeout", "3s"]);
    let out = "";
    cli.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    await waitFor("the apply to complete", () => out.includes("Apply complete!"), 30_000, 20);
    expect(await hasB()).toBe(true);
    killGroup(cli.pid!);
    await cli;
    const pending = (await history()).at(-1);
    expect(pending).toMatchObject({ status: "pending", previous: 1 });
    await expectNetwork(sb.target, { name: "a", bridge: "bolt-a", address: "10.91.0.1/24", mtu: 1400 });
    // Restored by the detached timer, through plan/apply/verify.
    await waitFor("bolt-b gone again", async () => !(await hasB()), 30_000);
    await waitFor("the restore recorded", async () => (await history()).some((r) => r.command.startsWith("rollback: revision")), 10_000);
    expect(await snapshot(sb.target)).toEqual(s1);
    const h = await history();
    expect(h.find((r) => r.id === pending.id).status).toBe("reverted");
    expect(h.at(-1)).toMatchObject({ status: "applied", command: `rollback: revision ${pending.id} not confirmed, restored revision 1` });
    // Stays restored: the plan of v1 is empty.
    expect((await sb.planExit(f1)).code).toBe(0);
  });

  it("killed in the middle of its apply: the timer undoes the partial apply and restores", async () => {
    const signal = `${sb.dir}/hang-signal`;
    const env = sb.fakeEnv(["ip"], { BOLT_HANG_PATTERN: "bolt-b", BOLT_HANG_SIGNAL: signal, BOLT_HANG_SECONDS: "60" });
    const cli = sb.spawnBolt(["apply", "-f", f2, "--confirm-timeout", "2s"], { env });
    await waitForFile(signal, 30_000, () => cli.exitCode === null);
    // The apply is half done (a's MTU may be changed, b not yet there): kill -9 the CLI and its ip.
    killGroup(cli.pid!);
    await cli;
    const pending = (await history()).at(-1);
    expect(pending.status).toBe("pending");
    const events = async () => JSON.parse((await sb.bolt(["history", "--all", "--json"])).stdout).events as Json[];
    const restored = await waitFor(
      "the timer's restore",
      async () => (await events()).find((e) => e.command === `rollback --if-unconfirmed ${pending.id}`),
      30_000,
    );
    expect(restored.outcome).toBe("applied");
    // previous = the head before it: the restore recorded by the first test (the same state as revision 1).
    expect(restored.summary).toMatch(/not confirmed by .*: restored revision \d+: undid the interrupted apply/);
    expect(await snapshot(sb.target)).toEqual(s1);
    expect((await history()).find((r) => r.id === pending.id).status).toBe("reverted");
    expect((await sb.planExit(f1)).code).toBe(0);
  });

  it("confirmed in time: the change stays", async () => {
    const r = await sb.bolt(["apply", "-f", f2, "--confirm-timeout", "3s"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Run `bolt confirm --netns bolt-t-\w+` within 3s/);
    const c = await sb.bolt(["confirm"]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^Confirmed revision \d+/);
    await sleep(5000);
    expect(await hasB()).toBe(true);
    await expectNetwork(sb.target, { name: "a", bridge: "bolt-a", address: "10.91.0.1/24", mtu: 1400 });
    expect((await history()).at(-1).status).toBe("confirmed");
    expect((await sb.planExit(f2)).code).toBe(0);
    const again = await sb.bolt(["confirm"]);
    expect(again.stdout).toMatch(/Nothing to confirm/);
    // Nothing to change: nothing to confirm, no timer.
    const revs = (await history()).length;
    const noop = await sb.bolt(["apply", "-f", f2, "--confirm-timeout", "3s"]);
    expect(noop.code, noop.stderr).toBe(0);
    expect(noop.stdout).toContain("No changes.");
    expect(noop.stdout).not.toContain("bolt confirm");
    expect(await history()).toHaveLength(revs);
  });

  it("history shows who, when, what; rollback --to 1 converges to revision 1", async () => {
    const text = await sb.bolt(["history"]);
    expect(text.stdout).toMatch(/^REV\s+WHEN\s+WHO\s+COMMAND\s+STATUS\s+CHANGES/);
    expect(text.stdout).toMatch(/\n1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\S+\s+apply\s+applied\s+\d+ to add/);
    const r = await sb.bolt(["rollback", "--to", "1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Rolled back to revision 1");
    expect(await snapshot(sb.target)).toEqual(s1);
    expect((await history()).at(-1)).toMatchObject({ command: "rollback --to 1", status: "applied" });
    const none = await sb.bolt(["rollback", "--to", "999"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no revision 999/);
  });
});
