// Progress of a slow apply: on a terminal (util-linux `script` gives bolt a pty) a
// "Still applying…" line appears after a second and is cleared before the summary; on a pipe
// there is none; `--progress json` writes one JSON event per wave on stderr.
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOLT_BIN, REPO, SKIP_REASON, Sandbox, requireBuild } from "./harness.js";

const config = (net: string) => `[networks.front]\nsubnet = "${net}.0/24"\n\n[[endpoints]]\nname = "web"\nnetwork = "front"\n`;

describe.skipIf(!!SKIP_REASON)("apply progress", () => {
  const sb = new Sandbox();

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
  });
  afterAll(() => sb.cleanup());

  /** A fake ip that sleeps 3 s before the first batch line containing `pattern`: an apply (or destroy) that takes a while. */
  const slow = (signal: string, pattern = "type bridge") =>
    sb.fakeEnv(["ip"], { BOLT_HANG_PATTERN: pattern, BOLT_HANG_SIGNAL: join(sb.dir, signal), BOLT_HANG_SECONDS: "3" });
  const common = () => ["--netns", sb.target, "--netns-prefix", sb.prefix, "--state-dir", sb.stateDir];

  it("on a terminal: a progress line while it runs, gone before the summary", async () => {
    const file = sb.write("a.toml", config("10.67.0"));
    const env = { ...process.env, ...slow("hang-a") };
    const cmd = ["node", BOLT_BIN, "apply", "-f", file, ...common()].map((a) => `'${a}'`).join(" ");
    const r = await execa("script", ["-q", "-e", "-c", cmd, "/dev/null"], { cwd: REPO, env, reject: false });
    expect(r.exitCode, String(r.stdout)).toBe(0);
    const out = String(r.stdout);
    expect(out).toMatch(/Still applying… (wave \d+\/\d+, \d+\/\d+ resources \(\d+\/\d+ ops\)|verifying what)/);
    expect(out).toMatch(/\d+s elapsed/);
    // The line is cleared (erase-line) before "Apply complete!".
    expect(out.lastIndexOf("\x1b[2K")).toBeLessThan(out.indexOf("Apply complete!"));
  });

  it("on a pipe: no progress line; with --progress json: one event per wave, the last one done", async () => {
    // A destroy that takes 3 s on a pipe: still no progress line.
    const t0 = Date.now();
    const d = await sb.bolt(["destroy"], { env: slow("hang-b", "link del") });
    expect(d.code, d.stderr).toBe(0);
    expect(Date.now() - t0, "the destroy really was slow").toBeGreaterThanOrEqual(3000);
    expect(d.stdout + d.stderr).not.toContain("Still");
    const file = sb.write("b.toml", config("10.67.1"));
    const r = await sb.bolt(["apply", "-f", file, "--progress", "json"], { env: slow("hang-c") });
    expect(r.code, r.stderr).toBe(0);
    const events = r.stderr
      .split("\n")
      .filter((l) => l.startsWith('{"event":"progress"'))
      .map((l) => JSON.parse(l));
    expect(events.length).toBeGreaterThan(1);
    expect(events.at(-1)).toMatchObject({ command: "apply", phase: "done" });
    const last = events.at(-1);
    expect(last.opsDone).toBe(last.ops);
    expect(last.stepsDone).toBe(last.steps);
    expect(events.some((e) => e.phase === "verify")).toBe(true);
    const p = await sb.planExit(file);
    expect(p.code, p.stdout).toBe(0);
  });
});
