// Hardening, safety: a config that declares nothing (truncated to 0 bytes by a crashed
// generator, a full disk, an editor mid-save) or that would delete more than half of what
// bolt owns (once it owns 10 or more objects) is refused by apply with the kernel untouched, unless the user says so
// (--allow-destroy, or `bolt destroy`); `bolt plan` warns that apply will refuse it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, requireBuild, snapshot } from "./harness.js";
import type { Snapshot } from "./harness.js";

const config = (names: string[]) =>
  // discovery off: the counts below are of networks, endpoints, the table and ip_forward
  `[networks.front]\nsubnet = "10.91.0.0/24"\ndiscovery = false\n` + names.map((n) => `\n[[endpoints]]\nname = "${n}"\nnetwork = "front"\n`).join("");

describe.skipIf(!!SKIP_REASON)("no silent mass destroy", () => {
  const sb = new Sandbox();
  let file: string;
  let applied: Snapshot;

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    file = sb.write("bolt-network.toml", config(["a", "b", "c", "d", "e", "f", "g", "h"]));
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    applied = await snapshot(sb.target);
  });
  afterAll(() => sb.cleanup());

  it("an empty file is refused, the kernel untouched, and plan says apply will refuse it", async () => {
    sb.write("bolt-network.toml", "");
    const plan = await sb.bolt(["plan", "-f", file]);
    expect(plan.code).toBe(0);
    expect(plan.stderr).toContain("`bolt apply` will refuse this plan: the configuration declares nothing (an empty or truncated file?)");
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: refusing to apply: the configuration declares nothing \(an empty or truncated file\?\): applying it would delete all \d+ object\(s\) bolt owns in netns \S+; nothing was changed \(if that is what you want, run `bolt destroy`, or apply with --allow-destroy\)$/,
    );
    expect(await snapshot(sb.target)).toEqual(applied);
    expect((await sb.mine()).length).toBe(9);
  });

  it("a config that deletes more than half of what bolt owns is refused too", async () => {
    sb.write("bolt-network.toml", config(["a"]));
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code).toBe(1);
    // 8 endpoints + network + nft table + ip_forward = 11 owned; 7 deletes.
    expect(r.stderr).toMatch(/refusing to apply: applying this would delete 7 of the 11 objects bolt owns/);
    expect(await snapshot(sb.target)).toEqual(applied);
  });

  it("a smaller change goes through; --allow-destroy lets the big one through", async () => {
    sb.write("bolt-network.toml", config(["a", "b", "c", "d", "e", "f"]));
    const small = await sb.bolt(["apply", "-f", file]);
    expect(small.code, small.stderr).toBe(0);
    sb.write("bolt-network.toml", config(["a"]));
    const big = await sb.bolt(["apply", "-f", file, "--allow-destroy"]);
    expect(big.code, big.stderr).toBe(0);
    expect(big.stdout).toContain("5 destroyed");
    expect((await sb.planExit(file)).code).toBe(0);
    // `bolt destroy` needs no flag: it is the explicit way to remove everything.
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(await sb.mine()).toEqual([sb.target]);
  });
});
