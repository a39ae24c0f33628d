import { createHash } from "node:crypto";
import { BoltError } from "./diagnostics.js";

/**
 * Revisions stored as content-defined chunks (restic's and rsync's idea, on JSON arrays): a
 * long array is cut into runs of elements, each run stored once under its hash, and the revision
 * keeps the list of hashes. A cut falls after an element whose own key hashes to a multiple of
 * CUT, so adding or removing one element changes only the run it is in: attaching one endpoint
 * among 1000 networks stores a few runs (tens of KB) instead of the whole state (about 4 MB).
 */

/** arrays shorter than this are kept inline */
export const CHUNK_MIN = 64;
/** one cut per CUT elements on average */
const CUT = 32;
const CHUNKS = "$chunks";

export interface ChunkedJson {
  /** the value with each long array replaced by {"$chunks": [hash, …]} */
  manifest: string;
  /** hash → a JSON array of the elements of one run */
  chunks: Map<string, string>;
}

/**
 * Chunks `value`'s long arrays: those at its top and inside plain objects (an array's elements
 * are kept whole). `str` writes one element (the intent holds bigints); `keyOf` names an element
 * for the cut (a resource's id), else its first 200 characters do.
 */
export function chunkJson(value: unknown, str: (v: unknown) => string): ChunkedJson {
  const chunks = new Map<string, string>();
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      if (v.length < CHUNK_MIN) return v;
      const hashes: string[] = [];
      let run: string[] = [];
      const close = () => {
        const body = `[${run.join(",")}]`;
        const h = createHash("sha256").update(body).digest("hex").slice(0, 32);
        chunks.set(h, body);
        hashes.push(h);
        run = [];
      };
      for (const el of v) {
        const s = str(el);
        run.push(s);
        if (cutAfter(keyOf(el, s))) close();
      }
      if (run.length) close();
      return { [CHUNKS]: hashes };
    }
    if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x);
      return out;
    }
    return v;
  };
  return { manifest: str(walk(value)), chunks };
}

/** The value back: each {"$chunks": […]} becomes the concatenation of its runs. */
export function unchunkJson(manifest: string, parse: (text: string) => unknown, chunk: (hash: string) => string | undefined): unknown {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v;
    if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      const hashes = o[CHUNKS];
      if (Object.keys(o).length === 1 && Array.isArray(hashes))
        return hashes.flatMap((h) => {
          const body = chunk(String(h));
          if (body === undefined) throw new BoltError(`revision chunk ${String(h)} is missing from the state store`);
          return parse(body) as unknown[];
        });
      for (const k of Object.keys(o)) o[k] = walk(o[k]);
    }
    return v;
  };
  return walk(parse(manifest));
}

function keyOf(el: unknown, s: string): string {
  const o = el as { id?: unknown; name?: unknown } | null;
  if (o && typeof o === "object") {
    if (typeof o.id === "string") return o.id;
    if (typeof o.name === "string") return o.name;
  }
  return s.slice(0, 200);
}

/** FNV-1a of the key: cheap, and the same on every run (the cut points must not move). */
function cutAfter(key: string): boolean {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % CUT === 0;
}
