import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { CommandRunner } from "../../src/exec/runner.js";
import type { BgpIntent } from "./intent.js";
import { renderBirdConfig } from "./render.js";

/**
 * BIRD's own parser on the config bolt renders: `bird -p -c FILE` parses and exits, starting
 * nothing and reading no kernel state, so plan (before anything changes) and `bolt validate`
 * (offline) both run it. The file is the password-masked rendering (lines are the same as the
 * real one's), private to this check. bird reports `FILE:LINE:COL message`: the line maps back
 * to the Boltfile key that produced it.
 */
export async function birdCheck(runner: CommandRunner, b: BgpIntent): Promise<Diagnostic | "no bird" | undefined> {
  const rendered = renderBirdConfig(b);
  const dir = mkdtempSync(join(tmpdir(), "bolt-bird-check-"));
  try {
    const file = join(dir, "bird.conf");
    writeFileSync(file, rendered.text, { mode: 0o600 });
    const r = await runner.run(["bird", "-p", "-c", file], undefined, { timeoutMs: 10_000 });
    if (r.code === 0) return undefined;
    // 127: the runner found no `bird` on PATH (BIRD is not installed here).
    if (r.code === 127) return "no bird";
    const m = /:(\d+):(\d+) (.*)/.exec(r.stderr);
    const line = m ? Number(m[1]) : undefined;
    return {
      severity: "error",
      message: `BIRD refuses the rendered config: ${m ? m[3]!.trim() : r.stderr.trim() || `bird -p exited ${r.code}`}${line ? ` (line ${line} of the rendered bird.conf)` : ""}`,
      source: (line !== undefined ? rendered.sources.get(line) : undefined) ?? b.source,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
