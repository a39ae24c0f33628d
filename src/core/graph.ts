/**
 * Topological order of resources by their `deps` (Kahn's algorithm), stable: among ready
 * nodes the earlier input position wins, so the same config always yields the same plan.
 * Deps on ids that are not in `items` are ignored (they already exist or are not bolt's).
 */
export function toposort<T extends { id: string; deps: string[] }>(items: T[]): T[] {
  const pos = new Map(items.map((i, n) => [i.id, n]));
  const indeg = new Array<number>(items.length).fill(0);
  const users: number[][] = items.map(() => []);
  items.forEach((item, n) => {
    for (const d of item.deps) {
      const p = pos.get(d);
      if (p === undefined) continue;
      indeg[n]!++;
      users[p]!.push(n);
    }
  });
  // `ready` stays sorted by input position (binary insertion keeps this O(n log n) compares).
  const ready: number[] = [];
  const insert = (n: number) => {
    let lo = 0;
    let hi = ready.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ready[mid]! < n) lo = mid + 1;
      else hi = mid;
    }
    ready.splice(lo, 0, n);
  };
  indeg.forEach((d, n) => d === 0 && ready.push(n));
  const out: T[] = [];
  while (ready.length) {
    const n = ready.shift()!;
    out.push(items[n]!);
    for (const u of users[n]!) if (--indeg[u]! === 0) insert(u);
  }
  if (out.length !== items.length) {
    const stuck = items.filter((_, n) => indeg[n]! > 0).map((i) => i.id);
    throw new Error(`dependency cycle between: ${stuck.join(", ")}`);
  }
  return out;
}
