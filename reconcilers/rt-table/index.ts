import { existsSync } from "node:fs";
import type { Diagnostic, SourcePos } from "../../src/core/diagnostics.js";
import { restoreFileOp, writeFileOp } from "../../src/core/file-ops.js";
import { fragment } from "../../src/core/intent.js";
import type { Intent } from "../../src/core/intent.js";
import type { Reconciler, Resource } from "../../src/core/resource.js";
import { STATIC_ROUTES } from "../route/intent.js";
import { POLICIES } from "../rule/intent.js";
import { NAMED_RANGE, NAME_SOURCES, allocate, entriesText, fileText, parseEntries, tablesPath } from "./tables-file.js";
import type { TableEntry } from "./tables-file.js";

/**
 * Named routing tables (`table = "games"` in [[routing.routes]] and [[routing.policies]]): bolt
 * gives each name a number in 21200–21999 and writes `/etc/iproute2/rt_tables.d/bolt-<target>.conf`,
 * so `ip route show table games` works and routes and rules are written by name. The file is
 * bolt's alone (removed on destroy); a name another rt_tables file defines is a config error,
 * never redefined.
 */
const FACT = "rt-table.entries";

/** Every table name the config uses, with where it was first written; and the tables it names by number. */
function namesIn(intent: Intent): { names: Map<string, SourcePos>; numbers: Set<number> } {
  const names = new Map<string, SourcePos>();
  const numbers = new Set<number>();
  const note = (t: string | number, at: SourcePos) => {
    if (typeof t === "number" || /^\d+$/.test(t)) numbers.add(Number(t));
    else if (t !== "main" && !names.has(t)) names.set(t, at);
  };
  for (const r of fragment(intent, STATIC_ROUTES)) note(r.table, r.at.table ?? r.source);
  for (const p of fragment(intent, POLICIES)) note(p.table, p.tableAt ?? p.source);
  return { names, numbers };
}

export const rtTableReconciler: Reconciler = {
  kind: "rt-table",
  // Routes and rules name the table: ip resolves the name when it reads their line (route.route is after this).
  phases: { file: {} },
  uses: ["route", "rule"],
  replaceOn: [],

  desired(ctx) {
    const { names, numbers } = namesIn(ctx.intent);
    if (!names.size) return { resources: [], diagnostics: [] };
    const path = tablesPath(ctx.target);
    const entries = JSON.parse(ctx.facts.get(FACT) ?? "[]") as TableEntry[];
    const own = entries.filter((e) => e.file === path);
    const foreign = entries.filter((e) => e.file !== path);
    const diagnostics: Diagnostic[] = [];
    for (const [name, at] of names) {
      const clash = foreign.find((e) => e.name === name);
      if (clash)
        diagnostics.push({
          severity: "error",
          message: `table "${name}" is already named in ${clash.file} (table ${clash.number}); bolt will not redefine it`,
          source: at,
          hint: "table names are host-wide (ip reads them from the host's /etc/iproute2 in every namespace): choose another name, or the number",
        });
    }
    const first = [...names.values()][0]!;
    const numbersOf = allocate([...names.keys()], own, new Set([...foreign.map((e) => e.number), ...numbers]));
    if (!numbersOf) {
      diagnostics.push({
        severity: "error",
        message: `more table names than bolt's range ${NAMED_RANGE.first}-${NAMED_RANGE.last} has free numbers`,
        source: first,
      });
      return { resources: [], diagnostics };
    }
    const r: Resource = {
      kind: "rt-table",
      name: path,
      id: `rt-table:${path}`,
      keys: [`file:${path}`],
      spec: { tables: entriesText([...numbersOf].map(([name, number]) => ({ name, number }))) },
      deps: [],
      owned: true,
      source: first,
    };
    return { resources: [r], diagnostics };
  },

  // read skips the tables file when it does not exist and no name is configured
  planFiles: (t) => [tablesPath(t)],
  async read(io, ctx) {
    const path = tablesPath(io.target);
    // Like bgp's run dir: without a name in the config and without bolt's file, nothing to read.
    if (!namesIn(ctx.intent).names.size && !existsSync(path)) return { resources: [], foreign: new Map() };
    // grep -H prints "file:line" for every line of every file; -s: a missing file is no error text.
    const r = await io.exec(["grep", "-r", "-H", "-s", "", ...NAME_SOURCES], null);
    const entries = parseEntries(r.stdout);
    // The file's own lines, byte for byte as grep printed them (an undo puts exactly these back).
    const mine = r.stdout.split("\n").filter((l) => l.startsWith(`${path}:`));
    const exists = mine.length > 0;
    const resources: Resource[] = exists
      ? [
          {
            kind: "rt-table",
            name: path,
            id: `rt-table:${path}`,
            keys: [`file:${path}`],
            spec: { tables: entriesText(entries.filter((e) => e.file === path)) },
            data: { text: mine.map((l) => `${l.slice(path.length + 1)}\n`).join("") },
            deps: [],
            owned: true,
          },
        ]
      : [];
    return { resources, foreign: new Map(), facts: { [FACT]: JSON.stringify(entries) } };
  },

  render(change, ctx) {
    const path = tablesPath(ctx.target);
    const before = change.before ?? ctx.live.get(change.id);
    const was = { exists: !!before, text: String(before?.data?.text ?? "") };
    if (change.action === "delete") return [{ tool: "exec", ns: null, args: ["rm", "-f", path], phase: "file", undo: [restoreFileOp(path, was)] }];
    return [{ ...writeFileOp(path, fileText(ctx.target, change.after!.spec.tables!)), phase: "file", undo: [restoreFileOp(path, was)] }];
  },
};
