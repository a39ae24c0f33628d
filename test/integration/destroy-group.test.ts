// Fast destroy: ten endpoints' host veths (and ten bridges) go in one link group delete each —
// the kernel unregisters them together instead of one RCU wait per device. A failure injected
// right before the group delete rolls back exactly: nothing was deleted, and no device is
// left in bolt's temporary group. Then a clean destroy leaves the namespaces as before apply.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, ipJson, requireBuild, snapshot } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";

const N = 10;
const config = Array.from({ length: N }, (_, i) => `[networks.n${i}]\nsubnet = "10.66.${i}.0/24"\n\n[[endpoints]]\nname = "e${i}"\nnetwork = "n${i}"\n`).join(
  "\n",
);

describe.skipIf(!!SKIP_REASON)("destroy with link groups", () => {
  const sb = new Sandbox();
  let file: string;
  let empty: Snapshot;

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    empty = await snapshot(sb.target);
    file = sb.write("many.toml", config);
    const a = await sb.bolt(["apply", "-f", file]);
    expect(a.code, a.stderr).toBe(0);
  });
  afterAll(() => sb.cleanup());

  it("a failure at the group delete rolls back: every device still there, none left in a group", async () => {
    const before = await snapshot(sb.target);
    const hit = join(sb.dir, "fault-hit");
    const r = await sb.bolt(["destroy"], { env: sb.fakeEnv(["ip"], { BOLT_FAULT_PATTERN: "link del group", BOLT_FAULT_HIT: hit }) });
    // The fault landed on the grouped path (the pattern exists only there).
    expect(existsSync(hit), "the destroy sent a link group delete").toBe(true);
    expect(readFileSync(hit, "utf8")).toMatch(/^line \d+:/);
    expect(r.code, r.stdout).not.toBe(0);
    expect(r.stderr).toMatch(/rolled back/i);
    expect(await snapshot(sb.target)).toEqual(before);
    const groups = ((await ipJson(sb.target, ["link", "show"])) as Json[]).map((l) => l.group);
    expect(new Set(groups)).toEqual(new Set(["default"]));
    const p = await sb.planExit(file);
    expect(p.code, p.stdout).toBe(0);
  });

  it("a clean destroy removes everything and leaves the namespace as it was", async () => {
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(await snapshot(sb.target)).toEqual(empty);
    expect((await sb.mine()).filter((n) => n !== sb.target)).toEqual([]);
  });
});
