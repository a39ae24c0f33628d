import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { dirname } from "node:path";
import { fileOps, isFilesHelper } from "./files-tool.js";
import { timeoutMs, toolName } from "./tools.js";
import type { CommandRunner, RunOptions, RunResult } from "./runner.js";

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
  run(argv: string[], stdin?: string, opts: RunOptions = {}): Promise<RunResult> {
    // bolt's own files helper: the same code without a node start per batch.
    if (isFilesHelper(argv)) return Promise.resolve({ stdout: "", ...fileOps(fs, dirname, stdin ?? "") });
    return new Promise((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { env: ENV, stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
      // No call runs unbounded: reads get their tool's default limit (a hung `wg` or `ip`
      // would otherwise hang plan, apply and the daemon, holding the target lock).
      const limit = opts.timeoutMs ?? timeoutMs(toolName(argv));
      let timedOut = false;
      let aborted = false;
      const stop = () => child.kill("SIGKILL");
      const timer = setTimeout(() => {
        timedOut = true;
        stop();
      }, limit);
      const onAbort = () => {
        aborted = true;
        stop();
      };
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener("abort", onAbort, { once: true });
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
      let settled = false;
      const finish = (code: number | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        const stdout = Buffer.concat(out).toString("utf8");
        const stderr = Buffer.concat(err).toString("utf8");
        if (timedOut) return resolve({ stdout, stderr: `${toolName(argv)} timed out after ${limit / 1000} s\n${stderr}`, code: 124, timedOut });
        if (aborted) return resolve({ stdout, stderr: `${toolName(argv)} interrupted\n${stderr}`, code: 130, aborted });
        resolve({ stdout, stderr: failed ? `${failed}\n${stderr}` : stderr, code: failed ? (code ?? 127) || 127 : (code ?? 1) });
      };
      child.on("close", finish);
      // A killed tool's own children (a wrapper's sleep) may hold its pipes open: do not wait for them.
      child.on("exit", (code) => {
        if (!timedOut && !aborted) return;
        for (const s of [child.stdout, child.stderr, child.stdin]) s?.destroy();
        finish(code);
      });
      if (stdin !== undefined) {
        // A child that exits before reading all of stdin (ip -batch stopping at an error) is fine.
        child.stdin!.on("error", () => {});
        child.stdin!.end(stdin);
      }
    });
  }
}
