import { spawn } from "node:child_process";
import type { CommandRunner, RunResult } from "./runner.js";

/**
 * The real runner: node:child_process, argv only (never a shell), stdin for batches.
 * It replaced execa on this path: with 1000 endpoint namespaces an apply starts ~1000
 * processes, and execa's per-call setup (environment copy, abort signals, option
 * normalisation) cost ~2.6 ms of main-thread time each, which starved the spawn pool.
 */
const ENV = { ...process.env, LC_ALL: "C" };
/** `ip -j -d link show` of a few thousand links is several MiB: allow far more, but not unbounded. */
const MAX_OUTPUT = 512 * 1024 * 1024;

export class ProcessRunner implements CommandRunner {
  run(argv: string[], stdin?: string): Promise<RunResult> {
    return new Promise((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { env: ENV, stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      let failed: string | undefined;
      const collect = (into: Buffer[]) => (b: Buffer) => {
        size += b.length;
        if (size > MAX_OUTPUT) {
          failed ??= `output of ${argv[0]} exceeded ${MAX_OUTPUT} bytes`;
          child.kill("SIGKILL");
        } else into.push(b);
      };
      child.stdout!.on("data", collect(out));
      child.stderr!.on("data", collect(err));
      child.on("error", (e: NodeJS.ErrnoException) => {
        failed ??= e.code === "ENOENT" ? `${argv[0]}: command not found on PATH` : e.message;
      });
      child.on("close", (code) => {
        const stderr = Buffer.concat(err).toString("utf8");
        resolve({ stdout: Buffer.concat(out).toString("utf8"), stderr: failed ? `${failed}\n${stderr}` : stderr, code: failed ? (code ?? 127) || 127 : (code ?? 1) });
      });
      if (stdin !== undefined) {
        // A child that exits before reading all of stdin (ip -batch stopping at an error) is fine.
        child.stdin!.on("error", () => {});
        child.stdin!.end(stdin);
      }
    });
  }
}
