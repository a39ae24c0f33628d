import type { NftTable } from "./compile.js";
import { nftName } from "./grammar.js";
import type { LiveSet, LiveShape } from "./read.js";
import { staticSetHash } from "./read.js";
import { TABLE, chainHeader, hash8, ruleText, setHash } from "./script.js";

/**
 * What an update of bolt's table writes: only what changed, in ONE `nft -f -` transaction
 * (all-or-nothing like the whole table), the way kube-proxy's nftables proxier syncs partially.
 *
 * - a set whose elements changed: `delete element` / added elements of the difference only,
 *   compared in compile.ts's canonical form (mergeCidrs: disjoint, merged, prefixes where a
 *   range is one), which is how nft lists an interval set back;
 * - a chain whose rules changed text but kept their keys in order: `replace rule … handle H`
 *   for those rules only (NLM_F_REPLACE swaps the rule in place, under the same handle);
 * - a chain whose rules were added, removed, reordered or edited by hand: `flush chain` and
 *   its rules added again, in the same transaction.
 *
 * A changed shape goes back to the whole-table replace (create, delete, define): a set or
 * chain added or removed, a base chain's hook, type or priority, a set's type or flags, a
 * set or chain bolt did not make. Those change what references what, and nft has no in-place
 * form for most of them (a set's type, a base chain's hook).
 */
export type TableWrite = { mode: "delta"; script: string; sets: string[]; chains: string[] } | { mode: "table"; reason: string };

/**
 * An element bolt can name in a `delete element` line: compile.ts's forms (quoted interface
 * names, concatenations of them, IPv4/IPv6 addresses, prefixes, ranges). Anything else in a
 * live set (a hand edit nft lists differently) makes the write whole-table instead.
 */
const NAMEABLE = /^(?:"[A-Za-z0-9_.-]{1,15}"(?: \. "[A-Za-z0-9_.-]{1,15}")*|[0-9A-Fa-f.:]+(?:\/\d{1,3}|-[0-9A-Fa-f.:]+)?)$/;

export function tableDelta(live: LiveShape, t: NftTable): TableWrite {
  const whole = (reason: string): TableWrite => ({ mode: "table", reason });
  const liveSets = new Map(live.sets.map((s) => [s.name, s]));
  const liveChains = new Map(live.chains.map((c) => [c.name, c]));
  const wantSets = new Set(t.sets.map((s) => s.name));
  const wantChains = new Set(t.chains.map((c) => c.name));
  const extraSet = live.sets.find((s) => !wantSets.has(s.name));
  if (extraSet) return whole(`set ${extraSet.name} is removed`);
  const newSet = t.sets.find((s) => !liveSets.has(s.name));
  if (newSet) return whole(`set ${newSet.name} is added`);
  const extraChain = live.chains.find((c) => !wantChains.has(c.name));
  if (extraChain) return whole(`chain ${extraChain.name} is removed`);
  const newChain = t.chains.find((c) => !liveChains.has(c.name));
  if (newChain) return whole(`chain ${newChain.name} is added`);
  const header = t.chains.find((c) => liveChains.get(c.name)!.header !== chainHeader(c));
  if (header) return whole(`chain ${header.name} changes its type, hook or priority`);

  const deletes: string[] = [];
  const adds: string[] = [];
  const sets: string[] = [];
  for (const s of t.sets) {
    const l = liveSets.get(s.name)!;
    const want = setHash(s);
    if (l.foreign) return whole(`set ${s.name} is not bolt's`);
    if (l.dynamic !== s.dynamic) return whole(`set ${s.name} changes between static and dynamic`);
    // A dynamic set's elements are the traffic's (rate-limit state), never written: only its declaration counts.
    if (s.dynamic) {
      if (l.hash !== want) return whole(`set ${s.name} changes its declaration`);
      continue;
    }
    if (l.decl !== s.decl.join(";")) return whole(`set ${s.name} changes its type or flags`);
    // Elements are compared as the kernel lists them (read.ts): the set comment keeps the hash it
    // was created with (nft cannot change it in place), which marks the set as bolt's, nothing more.
    if (staticSetHash(l) === want) continue;
    if (!s.elements.length) return whole(`set ${s.name} becomes empty`);
    if (!l.elements.every((e) => NAMEABLE.test(e))) return whole(`set ${s.name} holds an element bolt cannot name`);
    const { del, add } = elementDelta(l, s.elements);
    sets.push(s.name);
    if (del.length) deletes.push(`delete element ${TABLE} ${nftName(s.name)} { ${del.join(",\n\t")} }`);
    // Added as `add set` of the existing set with its declaration and the new elements, not as
    // `add element`: nft 1.0.6 lists every element of every interval set in the ruleset before
    // an `add element` (its userspace overlap check; ≈ 1.3 s for a 100k blocklist), while an
    // `add set` only needs the table's cache and the kernel checks overlaps itself (EEXIST),
    // in `nft -c` too. The set exists with this very declaration (checked above): nothing else changes.
    if (add.length) adds.push(`add set ${TABLE} ${nftName(s.name)} { ${s.decl.join("; ")}; elements = { ${add.join(",\n\t")} } }`);
  }

  const rules: string[] = [];
  const chains: string[] = [];
  for (const c of t.chains) {
    const l = liveChains.get(c.name)!;
    const name = nftName(c.name);
    const sameKeys =
      l.rules.length === c.rules.length && l.rules.every((r, i) => r.managed && r.key === c.rules[i]!.key && Number.isSafeInteger(r.handle) && r.handle > 0);
    if (sameKeys) {
      const changed = c.rules.flatMap((r, i) => (l.rules[i]!.hash === hash8(r.text) ? [] : [{ r, handle: l.rules[i]!.handle }]));
      if (!changed.length) continue;
      chains.push(c.name);
      for (const { r, handle } of changed) rules.push(`replace rule ${TABLE} ${name} handle ${handle} ${ruleText(r)}`);
      continue;
    }
    chains.push(c.name);
    rules.push(`flush chain ${TABLE} ${name}`);
    for (const r of c.rules) rules.push(`add rule ${TABLE} ${name} ${ruleText(r)}`);
  }
  if (!sets.length && !chains.length) return whole("nothing differs chain by chain or set by set");
  const what = [...sets.map((s) => `set ${s}`), ...chains.map((c) => `chain ${c}`)].join(", ");
  // Deletes before adds: a merged range (10.0.0.1-10.0.0.2) overlaps the element it replaces
  // (10.0.0.1), and the kernel checks a new interval against the set's next generation, where
  // an element deleted earlier in the same transaction is already gone.
  const script = [`# bolt: only what changed in ${TABLE} (${what}), one transaction`, ...deletes, ...adds, ...rules].join("\n") + "\n";
  return { mode: "delta", script, sets, chains };
}

/** The elements to delete and add so the live set lists exactly `want`. */
function elementDelta(l: LiveSet, want: string[]): { del: string[]; add: string[] } {
  const have = new Set(l.elements);
  const wanted = new Set(want);
  return { del: l.elements.filter((e) => !wanted.has(e)), add: want.filter((e) => !have.has(e)) };
}
