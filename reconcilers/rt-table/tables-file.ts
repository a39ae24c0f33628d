import type { Ns } from "../../src/exec/runner.js";

/**
 * iproute2's table names: `ip` maps a name to a number through /etc/iproute2/rt_tables and
 * every /etc/iproute2/rt_tables.d/*.conf (only those ending in .conf), read on the host's file
 * system whatever namespace `ip -n` works in — so a name is host-wide. bolt writes only its own
 * file per target; every other entry is somebody else's.
 */
export const TABLES_DIR = "/etc/iproute2/rt_tables.d";
/** Where iproute2 looks for names (6.5+ also reads /usr/share/iproute2). */
export const NAME_SOURCES = ["/etc/iproute2/rt_tables", TABLES_DIR, "/usr/share/iproute2/rt_tables", "/usr/share/iproute2/rt_tables.d"];
/** The numbers bolt gives names: above the policies' default tables (20200 + up to 999). */
export const NAMED_RANGE = { first: 21200, last: 21999 };

export interface TableEntry {
  file: string;
  number: number;
  name: string;
}

export function tablesPath(target: Ns): string {
  return `${TABLES_DIR}/bolt-${target ?? "host"}.conf`;
}

/** Entries of `grep -r -H "" FILES…` output ("path:line"), as iproute2 reads them (comments and .conf rule included). */
export function parseEntries(grepOut: string): TableEntry[] {
  const out: TableEntry[] = [];
  for (const line of grepOut.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const file = line.slice(0, colon);
    if (file.includes("/rt_tables.d/") && !file.endsWith(".conf")) continue;
    const [num, name] = line
      .slice(colon + 1)
      .replace(/#.*/, "")
      .trim()
      .split(/\s+/);
    const number = Number(num);
    if (name && Number.isInteger(number) && number >= 0) out.push({ file, number, name });
  }
  return out;
}

/** "21200 games, 21201 voice": the entries as one comparable string, by number. */
export function entriesText(entries: { number: number; name: string }[]): string {
  return [...entries]
    .sort((a, b) => a.number - b.number)
    .map((e) => `${e.number} ${e.name}`)
    .join(", ");
}

/** The file bolt writes for a target: a header saying whose it is, one "NUMBER NAME" line per name. */
export function fileText(target: Ns, spec: string): string {
  const lines = spec ? spec.split(", ").map((e) => e.replace(" ", "\t")) : [];
  return [
    `# bolt: table names of [[routing.routes]] and [[routing.policies]] for ${target === null ? "the host" : `netns ${target}`} (removed by bolt destroy)`,
    ...lines,
    "",
  ].join("\n");
}

/**
 * Numbers for the names a config uses: a name keeps the number bolt's file gave it (its routes
 * stay where they are), a new one gets the lowest number of the range nobody uses — not another
 * file's, not a table the config names by number. undefined: the range is full.
 */
export function allocate(names: string[], own: TableEntry[], taken: Set<number>): Map<string, number> | undefined {
  const out = new Map<string, number>();
  const used = new Set(taken);
  for (const n of names) {
    const kept = own.find((e) => e.name === n && !taken.has(e.number));
    if (kept && !used.has(kept.number)) {
      out.set(n, kept.number);
      used.add(kept.number);
    }
  }
  // Numbers a kept name will not reuse are not handed to a new name in the same apply either.
  for (const e of own) if (!out.has(e.name)) used.add(e.number);
  let next = NAMED_RANGE.first;
  for (const n of names) {
    if (out.has(n)) continue;
    while (used.has(next)) next++;
    if (next > NAMED_RANGE.last) return undefined;
    out.set(n, next);
    used.add(next);
  }
  return out;
}
