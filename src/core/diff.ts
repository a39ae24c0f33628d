import { createHash } from "node:crypto";
import type { Change, Resource } from "./resource.js";
import type { Registry } from "./registry.js";
import { toposort } from "./graph.js";

/**
 * Desired vs live, by resource id. Only owned live objects are candidates for update or
 * delete; an unowned live object with a desired id is adopted only by kinds that adopt
 * (sysctl). Result order: deletes in reverse dependency order, then the rest in dependency order.
 */
export function diffResources(desired: Resource[], live: Map<string, Resource>, registry: Registry): Change[] {
  const rec = registry.byKind;
  const kindRank = new Map(registry.kinds.map((r, i) => [r.kind, i]));
  const byRank = (a: Resource, b: Resource) => kindRank.get(a.kind)! - kindRank.get(b.kind)!;
  const desiredIds = new Set(desired.map((d) => d.id));
  const forward: Change[] = [];
  for (const d of toposort([...desired].sort(byRank))) {
    const l = live.get(d.id);
    const base = { id: d.id, kind: d.kind, name: d.name, after: d, source: d.source };
    if (!l || !l.owned) {
      forward.push({ ...base, action: "create", before: l && rec.get(d.kind)!.adopts ? l : undefined, changed: Object.keys(d.spec), forcedBy: [] });
      continue;
    }
    const free = rec.get(d.kind)!.kernelChosen ?? [];
    const changed = changedFields(l.spec, d.spec).filter((f) => !(free.includes(f) && (d.spec[f] ?? "") === ""));
    if (!changed.length) continue;
    const forcedBy = changed.filter((f) => rec.get(d.kind)!.replaceOn.includes(f));
    const fieldSource = changed.map((f) => d.fieldSources?.[f]).find(Boolean);
    forward.push({ ...base, action: forcedBy.length ? "replace" : "update", before: l, changed, forcedBy, source: fieldSource ?? d.source });
  }
  const doomed = [...live.values()].filter((l) => l.owned && !desiredIds.has(l.id)).sort(byRank);
  const deletes: Change[] = toposort(doomed)
    .reverse()
    .map((l) => ({ id: l.id, kind: l.kind, name: l.name, action: "delete", before: l, changed: [], forcedBy: [] }));
  return [...deletes, ...forward];
}

/** A short digest of a spec, equal for specs changedFields finds no difference in (a missing field is empty). */
export function specDigest(spec: Record<string, string>): string {
  const fields = Object.keys(spec)
    .filter((k) => (spec[k] ?? "") !== "")
    .sort()
    .map((k) => [k, spec[k]]);
  return createHash("sha256").update(JSON.stringify(fields)).digest("base64").slice(0, 16);
}

export function changedFields(a: Record<string, string>, b: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => (a[k] ?? "") !== (b[k] ?? ""));
}
