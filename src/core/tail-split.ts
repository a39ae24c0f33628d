/**
 * `tail -n +1 A B C` output: the content of each file that exists, by path. tail prints
 * "==> PATH <==" before each file and a blank line between files (the last one's is dropped),
 * so several small files cost one process — how the daemon kinds read their pid and config files.
 */
export function splitTail(out: string): Map<string, string> {
  const files = new Map<string, string>();
  let cur: string | undefined;
  let buf: string[] = [];
  const flush = () => {
    if (cur !== undefined) files.set(cur, buf.join("\n").replace(/\n\n$/, "\n"));
  };
  for (const line of out.split("\n")) {
    const m = /^==> (.*) <==$/.exec(line);
    if (m) {
      flush();
      cur = m[1];
      buf = [];
    } else buf.push(line);
  }
  flush();
  return files;
}
