// A batch that stops after `link add` and before the `alias` line (bolt's mark) leaves a link
// that reads as foreign; when every undo fails too, bolt must say so (never "the kernel is as it
// was"), keep the journal, let `bolt plan` describe the state (a warning, not "already exists"),
// and the next apply must remove the leftover, converge and leave a second plan empty.
import { join } from "node:path";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SKIP_REASON, must, ping, pristineSandbox, world } from "./harness.js";

const CONFIG = `
[networks.front]
subnet = "10.62.0.0/24"

[[endpoints]]
name = "web"
network = "front"
ip = "10.62.0.10"
`;

describe.skipIf(!!SKIP_REASON)("a half-applied batch whose every undo failed", () => {
  const s = pristineSandbox(CONFIG);
  const sb = s.sb;

  it("apply fails and says the bridge was left behind without bolt's mark; the journal is kept", async () => {
    const hit = join(sb.dir, "fault-hit");
    const r = await sb.bolt(["apply", "-f", s.file], {
      env: sb.fakeEnv(["ip"], { BOLT_FAULT_PATTERN: "alias bolt1,net=front", BOLT_FAULT_HIT: hit, BOLT_UNDO_FAIL: "1" }),
    });
    expect(existsSync(hit), "the fault never hit").toBe(true);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ROLLBACK INCOMPLETE: .*interface bolt-front was left behind without bolt's mark/);
    expect(r.stderr).toContain("ip: injected undo fault");
    expect(r.stderr).not.toContain("the kernel is as it was");
    const links = JSON.parse(await must(["ip", "-n", sb.target, "-j", "link", "show", "dev", "bolt-front"])) as { ifalias?: string }[];
    expect(links[0]?.ifalias ?? "").toBe("");
  });

  it("plan describes the state: a warning at the network's line, the create planned, exit 2 (changes), not an error", async () => {
    const p = await sb.planExit(s.file);
    expect(p.stderr).not.toMatch(/already exists/);
    expect(p.stderr).toMatch(/bolt-network\.toml:2:\d+.*interface bolt-front was left by the interrupted apply, without bolt's mark/s);
    expect(p.stderr).toContain("an interrupted apply left a journal");
    expect(p.stdout).toMatch(/\+ network "front"/);
    expect(p.code).toBe(2);
  });

  it("the next apply removes the leftover, converges (the endpoint reaches its gateway), a second plan is empty", async () => {
    const a = await sb.bolt(["apply", "-f", s.file]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toMatch(/rolled back an interrupted apply/);
    expect(await ping(sb.ns("web"), "10.62.0.1")).toBe(true);
    expect((await sb.planExit(s.file)).code).toBe(0);
    const d = await sb.bolt(["destroy", "-f", s.file]);
    expect(d.code, d.stderr).toBe(0);
    expect(await world(sb)).toEqual(s.pristine);
  });
});
