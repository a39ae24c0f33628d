import type { Reconciler } from "./resource.js";

/**
 * The registry as the core uses it, derived once at start-up from the kinds' own
 * declarations: the order desired state is computed in (a kind after the kinds it `uses`),
 * and one total order of every kind's write phases (creates run up it, deletes down it).
 * A cycle, a `uses` of a kind that is not registered, or an `after` naming a phase its kind
 * does not declare is an error here, never a silently different plan.
 */
export interface Registry {
  /** in registration order: how plans list kinds */
  kinds: Reconciler[];
  byKind: Map<string, Reconciler>;
  /** each kind after the kinds it uses */
  desiredOrder: Reconciler[];
  /** "kind.phase" → its rank in the phase order */
  stages: Map<string, number>;
  stage(kind: string, phase: string): number;
}

export class RegistryError extends Error {
  constructor(message: string) {
    super(`kind registry: ${message}`);
    this.name = "RegistryError";
  }
}

const compiled = new WeakMap<Reconciler[], Registry>();

/**
 * Compiles (and caches) a registry; throws RegistryError on an inconsistent declaration.
 * `partial` (tests of a few kinds): a `uses` of an unregistered kind is allowed (its fragment
 * and resources are simply empty).
 */
export function compileRegistry(kinds: Reconciler[], opts: { partial?: boolean } = {}): Registry {
  const hit = compiled.get(kinds);
  if (hit) return hit;
  const byKind = new Map<string, Reconciler>();
  for (const k of kinds) {
    if (byKind.has(k.kind)) throw new RegistryError(`kind "${k.kind}" is registered twice`);
    byKind.set(k.kind, k);
  }
  for (const k of kinds)
    for (const u of k.uses ?? []) if (!byKind.has(u) && !opts.partial) throw new RegistryError(`kind "${k.kind}" uses "${u}", which is not registered`);
  const desiredOrder = order(
    kinds.map((k, i) => ({ id: k.kind, rank: [i], after: (k.uses ?? []).filter((u) => byKind.has(u)) })),
    (cycle) => `kinds use each other in a cycle: ${cycle.join(" → ")}`,
  ).map((id) => byKind.get(id)!);

  const nodes: { id: string; rank: number[]; after: string[] }[] = [];
  kinds.forEach((k, i) => {
    const names = Object.keys(k.phases);
    if (!names.length) throw new RegistryError(`kind "${k.kind}" declares no phases`);
    names.forEach((p, j) => {
      const after: string[] = [];
      for (const a of k.phases[p]!.after ?? []) {
        const [kind, phase] = a.includes(".") ? (a.split(".", 2) as [string, string]) : [k.kind, a];
        const other = byKind.get(kind);
        // Ordering against a kind that is not registered (a registry of some kinds, in tests) is moot.
        if (!other) continue;
        if (!(phase in other.phases))
          throw new RegistryError(`phase "${k.kind}.${p}" is ordered after "${kind}.${phase}", which kind "${kind}" does not declare`);
        after.push(`${kind}.${phase}`);
      }
      nodes.push({ id: `${k.kind}.${p}`, rank: [i, j], after });
    });
  });
  const phaseOrder = order(nodes, (cycle) => `write phases are ordered in a cycle: ${cycle.join(" → ")}`);
  const stages = new Map(phaseOrder.map((id, i) => [id, i + 1]));
  const registry: Registry = {
    kinds,
    byKind,
    desiredOrder,
    stages,
    stage(kind, phase) {
      const s = stages.get(`${kind}.${phase}`);
      if (s === undefined) throw new RegistryError(`kind "${kind}" rendered an op in phase "${phase}", which it does not declare`);
      return s;
    },
  };
  compiled.set(kinds, registry);
  return registry;
}

/** Kahn's algorithm; among ready nodes the lowest rank (registration order) goes first. */
function order(nodes: { id: string; rank: number[]; after: string[] }[], cycleMessage: (cycle: string[]) => string): string[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const indeg = new Map(nodes.map((n) => [n.id, 0]));
  const users = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  for (const n of nodes) {
    for (const a of n.after) {
      indeg.set(n.id, indeg.get(n.id)! + 1);
      users.get(a)!.push(n.id);
    }
  }
  const cmp = (a: string, b: string) => {
    const x = byId.get(a)!.rank;
    const y = byId.get(b)!.rank;
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  };
  const ready = nodes.filter((n) => indeg.get(n.id) === 0).map((n) => n.id);
  const out: string[] = [];
  while (ready.length) {
    ready.sort(cmp);
    const id = ready.shift()!;
    out.push(id);
    for (const u of users.get(id)!) {
      indeg.set(u, indeg.get(u)! - 1);
      if (indeg.get(u) === 0) ready.push(u);
    }
  }
  if (out.length !== nodes.length) {
    const stuck = nodes.filter((n) => indeg.get(n.id)! > 0);
    // Walk back along unresolved `after` edges until a node repeats: that is the cycle.
    const seen: string[] = [];
    let cur = stuck[0]!;
    while (!seen.includes(cur.id)) {
      seen.push(cur.id);
      cur = byId.get(cur.after.find((a) => indeg.get(a)! > 0)!)!;
    }
    // Walked along "after" edges: reversed, it reads in the order the cycle demands (x before y …).
    const cycle = seen.slice(seen.indexOf(cur.id)).reverse();
    throw new RegistryError(cycleMessage([...cycle, cycle[0]!]));
  }
  return out;
}
