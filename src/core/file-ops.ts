import type { OpLine } from "./resource.js";

/**
 * Files a kind owns on the host's file system (a hosts block, an rt_tables.d file), written
 * through the runner like every other change: `tee PATH` with the content on stdin (no shell,
 * no temp file), and an undo that puts back exactly what was there, or removes what was not.
 */
export function writeFileOp(path: string, text: string): OpLine {
  return { tool: "exec", ns: null, args: ["tee", path], stdin: text };
}

/** Undo of a write or a removal: the file's old content, or no file when there was none. */
export function restoreFileOp(path: string, before: { exists: boolean; text: string }): OpLine {
  return before.exists ? writeFileOp(path, before.text) : { tool: "exec", ns: null, args: ["rm", "-f", path] };
}
