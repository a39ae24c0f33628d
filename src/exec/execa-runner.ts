import type { CommandRunner, RunResult } from "./runner.js";

/**
 * Real runner on execa. maxBuffer is raised far beyond the 1 MiB default: `ip -j -d link`
 * of a few thousand links is several MiB.
 */
export class ExecaRunner implements CommandRunner {
  async run(argv: string[], stdin?: string): Promise<RunResult> {
    const { execa } = await import("execa");
    const r = await execa(argv[0]!, argv.slice(1), {
      input: stdin,
      reject: false,
      stripFinalNewline: false,
      maxBuffer: 512 * 1024 * 1024,
      env: { LC_ALL: "C" },
    });
    const code = typeof r.exitCode === "number" ? r.exitCode : 127;
    const stderr = String(r.stderr ?? "") || (r.failed && code === 127 ? String(r.shortMessage ?? "") : "");
    return { stdout: String(r.stdout ?? ""), stderr, code };
  }
}
