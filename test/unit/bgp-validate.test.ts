// bolt validate's BIRD check: `bird -p` on the rendered config (offline, nothing started), its
// error at the Boltfile line that produced the offending BIRD line; no bird here is a warning.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cmdValidate } from "../../src/cli/commands.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import { ProcessRunner } from "../../src/exec/process-runner.js";
import { ScriptedRunner } from "../../src/exec/scripted-runner.js";

const dir = mkdtempSync(join(tmpdir(), "bolt-bgp-validate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HAS_BIRD = (() => {
  try {
    execFileSync("bird", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const pass = join(dir, "peer.pass");
writeFileSync(pass, "s3cret\n");
chmodSync(pass, 0o600);

const boltfile = (pattern: string) => `[routing.bgp]
router_id = "10.91.0.1"
local_asn = 65001
networks = ["10.93.0.0/24"]

[[routing.bgp.neighbors]]
ip = "10.91.0.2"
remote_asn = 65002
password_file = "peer.pass"
import = ["${pattern}"]
`;

async function validate(text: string, runner: ProcessRunner | ScriptedRunner) {
  const f = join(dir, `v${Math.random().toString(16).slice(2)}.toml`);
  writeFileSync(f, text);
  const out: string[] = [];
  const errs: string[] = [];
  try {
    const code = await cmdValidate({ file: [f], out: (s: string) => out.push(s), err: (s: string) => errs.push(s), runner } as never);
    return { code, out: out.join(""), err: errs.join(""), file: f };
  } catch (e) {
    return { error: e as ConfigError, file: f, out: out.join(""), err: errs.join("") };
  }
}

describe("bolt validate runs bird -p", () => {
  it.skipIf(!HAS_BIRD)("a pattern bolt's own checks pass but BIRD refuses: an error at the import line", async () => {
    const text = boltfile("10.0.0.0/8{30,20}");
    const r = await validate(text, new ProcessRunner());
    expect(r.error).toBeInstanceOf(ConfigError);
    const d = r.error!.diagnostics.find((x) => x.severity === "error")!;
    expect(d.message).toMatch(/^BIRD refuses the rendered config: Invalid prefix pattern range: \{30, 20\} \(line \d+ of the rendered bird\.conf\)$/);
    expect(d.source).toMatchObject({ file: r.file, line: text.split("\n").findIndex((l) => l.startsWith("import")) + 1 });
  });

  it.skipIf(!HAS_BIRD)("a good config is valid", async () => {
    const r = await validate(boltfile("10.0.0.0/8{16,24}"), new ProcessRunner());
    expect(r.error).toBeUndefined();
    expect(r.code).toBe(0);
  });

  it("without bird installed: valid, with a warning that BIRD's parser did not run", async () => {
    const runner = new ScriptedRunner([(c) => (c.argv[0] === "bird" ? { stdout: "", stderr: "bird: command not found on PATH", code: 127 } : undefined)]);
    const r = await validate(boltfile("10.0.0.0/8{30,20}"), runner);
    expect(r.error).toBeUndefined();
    expect(r.code).toBe(0);
    expect(runner.calls.map((c) => c.argv[0])).toEqual(["bird"]);
    expect(r.err + r.out).toMatch(/`bird` is not installed here: the rendered BIRD config is not checked with `bird -p`/);
  });
});
