import { createHash } from "node:crypto";
import type { Ns } from "../../src/exec/runner.js";

/**
 * A file bolt owns whole (a namespace's resolv.conf or hosts). Its first line says so and for
 * which target, so ownership is read from the file alone (no state dir needed); a file that
 * was there before rides along at the end, base64 in comment lines, so destroy puts it back
 * byte for byte even after the state dir is lost. Both glibc parsers skip them: resolv.conf
 * ignores lines starting with '#' or ';', nss_files ignores everything from '#' on a line.
 */
const MARK = "# managed by bolt for ";
const TAIL = "; edits are overwritten, bolt destroy puts back what was here";
const ORIGINAL = "# bolt-original-base64:";
/** base64 characters per comment line (well under the old 1024-byte line buffers). */
const CHUNK = 76;

export function markLine(target: Ns): string {
  return MARK + (target === null ? "the host namespace" : `target netns ${target}`) + TAIL;
}

/** The file's owner when its first line is bolt's mark: the target (null for the host), or undefined when not bolt's. */
export function ownerOf(text: string): { target: Ns } | undefined {
  const first = text.slice(0, text.indexOf("\n") + 1 || text.length);
  const m = /^# managed by bolt for (?:target netns (\S+)|the host namespace);/.exec(first);
  return m ? { target: m[1] ?? null } : undefined;
}

export interface Original {
  exists: boolean;
  text: string;
}

/** The whole file: mark, body lines, then the original when there was one. */
export function ownedText(target: Ns, body: string[], original: Original): string {
  const lines = [markLine(target), ...body];
  if (original.exists) {
    const b64 = Buffer.from(original.text, "utf8").toString("base64");
    if (!b64) lines.push(ORIGINAL);
    for (let i = 0; i < b64.length; i += CHUNK) lines.push(`${ORIGINAL} ${b64.slice(i, i + CHUNK)}`);
  }
  return lines.join("\n") + "\n";
}

/** A bolt-owned file split back: its body lines (mark and original removed) and the original it keeps. */
export function parseOwned(text: string): { body: string[]; original: Original } {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const body: string[] = [];
  let b64 = "";
  let exists = false;
  lines.slice(1).forEach((l) => {
    if (l === ORIGINAL || l.startsWith(`${ORIGINAL} `)) {
      exists = true;
      b64 += l.slice(ORIGINAL.length).trim();
    } else body.push(l);
  });
  return { body, original: { exists, text: exists ? Buffer.from(b64, "base64").toString("utf8") : "" } };
}

/** What the plan compares for a file's content: a short digest (a hosts file of 1000 names is no plan field). */
export function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}
