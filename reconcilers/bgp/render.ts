import { createHash } from "node:crypto";
import type { SourcePos } from "../../src/core/diagnostics.js";
import type { BgpFilter, BgpIntent, BgpNeighbor } from "./intent.js";

/**
 * The BIRD 2 config of bolt's own bird for one target. Everything bolt compares is in it: the
 * header lines name the summary fields a plan shows (read back from the loaded copy, so a
 * restarted bolt knows what the running bird has), and the digest of the text — with each
 * password masked, so the digest and the plan never carry one — is the `config` field.
 *
 * Routes: BGP learns, the kernel protocols install what BGP learned (`proto bird` in the
 * kernel, never bolt's own route protocol 176) and withdraw it when bird stops (no `persist`);
 * nothing is learned from the kernel. Announced prefixes are `unreachable` static routes:
 * they exist only to be exported to the neighbors, never installed locally.
 */

export const MASK = "(sensitive)";
export const HEADER = "# bolt ";

export interface RenderedConfig {
  text: string;
  /** the config source of each line (1-based line → position), to place `bird -p` errors */
  sources: Map<number, SourcePos>;
}

/** Summary fields of the resource, as the config's header records them. */
export function summary(b: BgpIntent): Record<string, string> {
  return {
    router_id: b.routerId,
    asn: String(b.asn),
    neighbors: b.neighbors.map((n) => `${n.address} AS${n.asn}`).join(", "),
    announce: b.announce.map((a) => a.prefix).join(", "),
  };
}

/** `passwords`: file → password; without them the password lines carry the mask (the template). */
export function renderBirdConfig(b: BgpIntent, passwords?: Map<string, string>): RenderedConfig {
  const lines: string[] = [];
  const sources = new Map<number, SourcePos>();
  const add = (l: string, src?: SourcePos) => {
    lines.push(l);
    if (src) sources.set(lines.length, src);
  };
  add("# Written by bolt for its own bird; rewritten on every apply (edit the Boltfile, not this file).");
  for (const [k, v] of Object.entries(summary(b))) add(`${HEADER}${k}: ${v}`);
  add(`router id ${b.routerId};`, b.source);
  // Full dates: a session's uptime is computed from "Since" and must survive midnight.
  add("timeformat protocol iso long;");
  add("");
  add("protocol device {");
  add("\tscan time 10;");
  add("}");
  for (const fam of [4, 6] as const) {
    add("");
    add(`protocol kernel bolt_kernel${fam} {`);
    add(`\tipv${fam} {`);
    add("\t\timport none;");
    add("\t\texport where source = RTS_BGP;");
    add("\t};");
    add("}");
  }
  for (const fam of [4, 6] as const) {
    const mine = b.announce.filter((a) => a.family === fam);
    add("");
    add(`protocol static bolt_announce${fam} {`);
    add(`\tipv${fam};`);
    for (const a of mine) add(`\troute ${a.prefix} unreachable;`, a.source);
    add("}");
  }
  for (const n of b.neighbors) {
    add("");
    add(`protocol bgp ${n.proto} {`, n.source);
    add(`\tlocal as ${b.asn};`, b.source);
    add(`\tneighbor ${n.address} as ${n.asn};`, n.source);
    if (n.passwordFile) {
      const pw = passwords?.get(n.passwordFile) ?? MASK;
      // The digest of the password changes the text (and so the plan) when the file's content does.
      add(`\tpassword "${pw}"; # password_file ${n.passwordFile} sha256:${n.passwordDigest}`, n.source);
    }
    add(`\tipv${n.family} {`, n.source);
    add(`\t\t${importClause(n.import)}`, "source" in n.import ? n.import.source : n.source);
    add(`\t\t${exportClause(n)}`, "source" in n.export ? n.export.source : n.source);
    add("\t};");
    add("}");
  }
  return { text: lines.join("\n") + "\n", sources };
}

function importClause(f: BgpFilter): string {
  if ("all" in f) return "import all;";
  if ("none" in f) return "import none;";
  return f.prefixes.length ? `import where net ~ [ ${f.prefixes.join(", ")} ];` : "import none;";
}

/** Only the announced prefixes ever leave: routes learned from one neighbor are not passed on (bolt is no transit). */
function exportClause(n: BgpNeighbor): string {
  const own = `proto = "bolt_announce${n.family}"`;
  const f = n.export;
  if ("all" in f) return `export where ${own};`;
  if ("none" in f) return "export none;";
  return f.prefixes.length ? `export where ${own} && net ~ [ ${f.prefixes.join(", ")} ];` : "export none;";
}

/** A loaded config with its passwords replaced by the mask (what the template has). */
export function maskPasswords(text: string): string {
  return text.replace(/^(\s*password )".*"(; # password_file .*)$/gm, `$1"${MASK}"$2`);
}

/** The `config` field: a digest of the masked text (short: it is shown in plans). */
export function configDigest(text: string): string {
  return "sha256:" + createHash("sha256").update(maskPasswords(text)).digest("hex").slice(0, 16);
}

/** The summary fields recorded in a config's header. */
export function parseHeader(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of text.split("\n")) {
    if (!l.startsWith(HEADER)) continue;
    const i = l.indexOf(": ", HEADER.length);
    if (i > 0) out[l.slice(HEADER.length, i)] = l.slice(i + 2);
  }
  return out;
}
