import { EXIT } from "../core/diagnostics.js";
import { StateStore } from "../state/store.js";
import { target } from "./commands.js";
import type { GlobalOpts } from "./commands.js";
import { targetName } from "./render-text.js";

/**
 * `bolt history`: the revisions of a target (who, when, what, and whether it is pending,
 * confirmed or was rolled back); `--all` adds every recorded event, failures included.
 */
export async function cmdHistory(o: GlobalOpts & { all?: boolean }): Promise<number> {
  const t = target(o);
  let store: StateStore;
  try {
    store = StateStore.openReadOnly(o.stateDir);
  } catch {
    o.out(
      o.json
        ? JSON.stringify({ format_version: "1.0", target: { netns: t }, revisions: [], events: [] }, null, 2) + "\n"
        : `No history for ${targetName(t)} yet.\n`,
    );
    return EXIT.OK;
  }
  try {
    const revisions = store.revisions(t).map(({ blob: _b, timer: _t, ...r }) => r);
    const events = o.all ? store.history(t) : [];
    if (o.json) {
      o.out(JSON.stringify({ format_version: "1.0", target: { netns: t }, revisions, ...(o.all ? { events } : {}) }, null, 2) + "\n");
      return EXIT.OK;
    }
    if (!revisions.length && !events.length) {
      o.out(`No history for ${targetName(t)} yet.\n`);
      return EXIT.OK;
    }
    const rows = revisions.map((r) => [
      String(r.id),
      local(r.at),
      r.user,
      r.command,
      r.status === "pending" && r.confirm_by ? `pending until ${local(r.confirm_by)}` : r.status,
      r.summary.replace(/^Plan: /, ""),
    ]);
    o.out(table(["REV", "WHEN", "WHO", "COMMAND", "STATUS", "CHANGES"], rows));
    if (o.all) {
      o.out(`\nEvents in ${targetName(t)}:\n`);
      o.out(
        table(
          ["#", "WHEN", "WHO", "COMMAND", "OUTCOME", "SUMMARY"],
          events.map((e) => [String(e.id), local(e.at), e.user, e.command, e.outcome, e.summary.replace(/^Plan: /, "")]),
        ),
      );
    }
    return EXIT.OK;
  } finally {
    store.close();
  }
}

function local(iso: string): string {
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!)))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)].join("\n") + "\n";
}
