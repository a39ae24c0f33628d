import type { LiveReader } from "../../src/core/live-reader.js";

/**
 * The namespace files of this kind, and how all of them are read in one process: `find` lists
 * every /etc/netns/NS/{resolv.conf,hosts} and hands them to a single `tail -v -n +1`, whose
 * output is each file verbatim after a `==> PATH <==` header (the headers after the first
 * preceded by one newline), so a file without a final newline is read exactly as it is.
 */
export const NETNS_DIR = "/etc/netns";
export type FileName = "resolv.conf" | "hosts";

export function filePath(ns: string, name: FileName): string {
  return `${NETNS_DIR}/${ns}/${name}`;
}

export const READ_ARGV = [
  "find",
  NETNS_DIR,
  "-mindepth",
  "2",
  "-maxdepth",
  "2",
  "-type",
  "f",
  "(",
  "-name",
  "resolv.conf",
  "-o",
  "-name",
  "hosts",
  ")",
  "-exec",
  "tail",
  "-v",
  "-n",
  "+1",
  "--",
  "{}",
  "+",
];

const HEADER = /(?:^|\n)==> (\/etc\/netns\/[^/\n]+\/(?:resolv\.conf|hosts)) <==\n/g;

/** `tail -v` output split back into files, path → exact content. */
export function splitTailV(out: string): Map<string, string> {
  const files = new Map<string, string>();
  const heads = [...out.matchAll(HEADER)];
  heads.forEach((m, i) => {
    const start = m.index! + m[0].length;
    const next = heads[i + 1];
    // The next header's match begins with the newline tail puts between files.
    files.set(m[1]!, out.slice(start, next ? next.index! : out.length));
  });
  return files;
}

/** Every namespace file there is, and whether /etc/netns itself exists (find says so on stderr). */
export async function readNetnsFiles(io: LiveReader): Promise<{ files: Map<string, string>; dirExists: boolean }> {
  const r = await io.exec(READ_ARGV, null);
  return { files: splitTailV(r.stdout), dirExists: !(r.code !== 0 && /No such file or directory/.test(r.stderr) && !r.stdout) };
}

/** The fact that says /etc/netns is missing (so the undo of a first write removes it again). */
export const NO_NETNS_DIR = "resolver.etc_netns_missing";
