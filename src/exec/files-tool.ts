import { CommandError } from "../base/diagnostics.js";
import type { Batch } from "./command.js";
import type { RunResult } from "./runner.js";

/**
 * Whole files bolt owns on the host (a namespace's resolv.conf and hosts), written by one
 * process for any number of them: `node -e FILES_SCRIPT bolt-files` with the ops as JSON on
 * stdin, run in order, stopping at the first failure (reported as "Command failed -:N", like
 * `ip -batch`). Two verbs:
 *
 * - `["write", PATH]` + stdin: the parent directory made when missing, then the file written
 *   in place (O_TRUNC, same inode): `ip netns exec` bind-mounts /etc/netns/NS/FILE over
 *   /etc/FILE, and a bind mount holds the inode, so a rename-into-place would leave every
 *   process already running in the namespace with the old file.
 * - `["remove", PATH]`: the file unlinked (absent is fine), then its directory if that left it
 *   empty (what `rmdir --ignore-fail-on-non-empty` does).
 * - `["rmdir", DIR]`: the directory, when empty (the undo of a write that had to make it).
 */
export const FILES_LABEL = "bolt-files";

/**
 * The helper itself. Self-contained, since its source is also FILES_SCRIPT's (no imports, no
 * named inner functions): the real runner calls it in process (process-runner.ts: a node
 * start costs ~100 ms, the writes microseconds); any other runner sees one command.
 */
export function fileOps(fs: typeof import("node:fs"), dirname: (p: string) => string, input: string): { code: number; stderr: string } {
  const { ops, force } = JSON.parse(input) as { ops: FileOp[]; force: boolean };
  const tolerated = ["ENOTEMPTY", "EEXIST", "ENOENT"];
  let failed = 0;
  let stderr = "";
  ops.forEach((o, i) => {
    if (failed && !force) return;
    try {
      if (o.verb === "write") {
        fs.mkdirSync(dirname(o.path), { recursive: true, mode: 0o755 });
        fs.writeFileSync(o.path, o.text ?? "", { mode: 0o644 });
      } else if (o.verb === "remove" || o.verb === "rmdir") {
        if (o.verb === "remove") fs.rmSync(o.path, { force: true });
        try {
          fs.rmdirSync(o.verb === "remove" ? dirname(o.path) : o.path);
        } catch (e) {
          if (!tolerated.includes((e as NodeJS.ErrnoException).code ?? "")) throw e;
        }
      } else throw new Error(`unknown verb ${o.verb}`);
    } catch (e) {
      stderr += `${o.verb} ${o.path}: ${(e as Error).message}\nCommand failed -:${i + 1}\n`;
      failed ||= i + 1;
    }
  });
  return { code: failed ? 1 : 0, stderr };
}

export const FILES_SCRIPT = `const fs=require("fs"),r=(${fileOps.toString()})(fs,require("path").dirname,fs.readFileSync(0,"utf8"));process.stderr.write(r.stderr);process.exitCode=r.code;`;

/** Whether argv is the files helper (the real runner runs it in process). */
export function isFilesHelper(argv: string[]): boolean {
  return argv.length === 4 && argv[0] === process.execPath && argv[1] === "-e" && argv[2] === FILES_SCRIPT && argv[3] === FILES_LABEL;
}

export interface FileOp {
  verb: "write" | "remove" | "rmdir";
  path: string;
  text?: string;
}

/** The argv and stdin of one run of the files helper (shared with the fake kernel, which answers it). */
export function filesCommand(ops: FileOp[], force: boolean): { argv: string[]; stdin: string } {
  return { argv: [process.execPath, "-e", FILES_SCRIPT, FILES_LABEL], stdin: JSON.stringify({ ops, force }) };
}

/** An op line's args as a FileOp: `write PATH` (text on stdin) or `remove PATH`. */
export function fileOpOf(args: string[], stdin: string | undefined): FileOp {
  const [verb, path] = args;
  if ((verb !== "write" && verb !== "remove" && verb !== "rmdir") || !path || args.length !== 2)
    throw new Error(`internal: bad files op: ${JSON.stringify(args)}`);
  return verb === "write" ? { verb, path, text: stdin ?? "" } : { verb, path };
}

export async function runFilesBatch(
  batch: Batch,
  o: { force?: boolean; signal?: AbortSignal },
  limited: (argv: string[], stdin: string) => Promise<RunResult>,
): Promise<{ done: number; error?: CommandError }> {
  if (batch.ns !== null) throw new Error("internal: the files tool writes the host's file system (ns must be null)");
  const { argv, stdin } = filesCommand(
    batch.ops.map((op) => fileOpOf(op.args, op.stdin)),
    !!o.force,
  );
  const r = await limited(argv, stdin);
  if (r.code === 0) return { done: batch.ops.length };
  const m = /Command failed -:(\d+)/.exec(r.stderr);
  const err = new CommandError([FILES_LABEL, `(${batch.ops.length} file op(s))`], r.code, r.stderr, m ? Number(m[1]) : undefined);
  if (!m || o.force) return { done: batch.ops.length, error: err };
  return { done: Math.min(Number(m[1]) - 1, batch.ops.length), error: err };
}
