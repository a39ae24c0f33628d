import type { SourcePos } from "../core/diagnostics.js";

/** Reports a config error at a position (kinds' intent builders get one from normalize). */
export type Err = (message: string, source: SourcePos, hint?: string) => void;

/** Report every item whose key an earlier item already has. */
export function duplicates<T>(items: T[], key: (t: T) => string | undefined, msg: (t: T, first: T) => string, at: (t: T) => SourcePos, err: Err): void {
  const seen = new Map<string, T>();
  for (const t of items) {
    const k = key(t);
    if (k === undefined) continue;
    const first = seen.get(k);
    if (first) err(msg(t, first), at(t));
    else seen.set(k, t);
  }
}
