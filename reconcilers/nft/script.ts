import { createHash } from "node:crypto";
import type { NftTable } from "./compile.js";
import { nftComment, nftName } from "./grammar.js";

/**
 * bolt's table as one `nft -f -` transaction, and the comparable spec of it. Every rule and
 * set carries a comment `bolt:<key>|<hash>` (sets: `bolt:<hash>`, dynamic: `bolt:d:<hash>`):
 * reading `nft -j list table` back gives the same spec without parsing nft expressions.
 */
export const TABLE = "inet bolt";

export function hash8(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 8);
}

export function chainHeader(c: NftTable["chains"][number]): string {
  return c.base ? `${c.base.type} ${c.base.hook} ${c.base.prio} accept` : "regular";
}

export function setHash(s: NftTable["sets"][number]): string {
  return hash8(s.decl.join(";") + "|" + (s.dynamic ? "" : s.elements.join(",")));
}

/** spec: what diff compares; display: what a plan prints for each spec field. */
export function tableSpec(t: NftTable): { spec: Record<string, string>; display: Record<string, string> } {
  const spec: Record<string, string> = {};
  const display: Record<string, string> = {};
  for (const s of t.sets) {
    const f = `set ${s.name}`;
    spec[f] = s.dynamic ? `dynamic ${setHash(s)}` : `${s.elements.length} elements ${setHash(s)}`;
    display[f] = s.dynamic
      ? `{ ${s.decl.join("; ")} } (filled by traffic)`
      : `{ ${s.decl.join("; ")}; ${s.elements.length} elements${s.elements.length ? `: ${s.elements.slice(0, 3).join(", ")}${s.elements.length > 3 ? ", …" : ""}` : ""} }`;
  }
  for (const c of t.chains) {
    spec[`chain ${c.name}`] = chainHeader(c);
    display[`chain ${c.name}`] = chainHeader(c);
    for (const r of c.rules) {
      spec[`${c.name} ${r.key}`] = hash8(r.text);
      display[`${c.name} ${r.key}`] = r.text;
    }
    spec[`${c.name} order`] = hash8(c.rules.map((r) => r.key).join("\n"));
    display[`${c.name} order`] = c.rules.map((r) => r.key).join(", ");
  }
  return { spec, display };
}

/** The whole table, replaced atomically: create-if-missing, delete, define — one transaction. */
export function tableScript(t: NftTable): string {
  const out = [`table ${TABLE}`, `delete table ${TABLE}`, `table ${TABLE} {`];
  for (const s of t.sets) {
    out.push(`\tset ${nftName(s.name)} {`);
    for (const d of s.decl) out.push(`\t\t${d}`);
    out.push(`\t\tcomment ${nftComment(`bolt:${s.dynamic ? "d:" : ""}${setHash(s)}`)}`);
    if (!s.dynamic && s.elements.length) out.push(`\t\telements = { ${s.elements.join(",\n\t\t\t")} }`);
    out.push("\t}");
  }
  for (const c of t.chains) {
    out.push(`\tchain ${nftName(c.name)} {`);
    if (c.base) out.push(`\t\ttype ${c.base.type} hook ${c.base.hook} priority ${c.base.prio}; policy accept;`);
    for (const r of c.rules) out.push(`\t\t${ruleText(r)}`);
    out.push("\t}");
  }
  out.push("}");
  return out.join("\n") + "\n";
}

/** A rule as bolt writes it: its text, then the comment that names it and hashes the text. */
export function ruleText(r: NftTable["chains"][number]["rules"][number]): string {
  return `${r.text} comment ${nftComment(`bolt:${r.key}|${hash8(r.text)}`)}`;
}

export const DELETE_SCRIPT = `table ${TABLE}\ndelete table ${TABLE}\n`;

/** Restores a table from `nft -s list table` output, atomically replacing whatever is there. */
export function restoreScript(snapshot: string): string {
  return DELETE_SCRIPT + snapshot;
}
