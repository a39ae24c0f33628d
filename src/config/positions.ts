import type { SourcePos } from "../core/diagnostics.js";

/** Where each config value came from, by JSON pointer (`/networks/web/subnet`). */
export interface Located {
  key?: SourcePos; // position of the key (or table header) that introduced the value
  value?: SourcePos; // position of the value itself
}

/**
 * Positions can be built lazily: a TOML file is parsed for values by a fast parser, and the
 * slower position-keeping parse runs only when a position is actually read (an error, or a
 * change to print). Positions handed out before that are resolved on first access.
 */
export class PositionMap {
  private readonly map = new Map<string, Located>();
  constructor(
    readonly file: string,
    private build?: (m: PositionMap) => void,
  ) {}

  private ensure(): void {
    const b = this.build;
    if (!b) return;
    this.build = undefined;
    try {
      b(this);
    } catch {
      /* positions are best effort: a lookup falls back to line 1 */
    }
  }

  set(pointer: string, which: keyof Located, line: number, col: number): void {
    const cur = this.map.get(pointer) ?? {};
    if (!cur[which]) cur[which] = { file: this.file, line, col };
    this.map.set(pointer, cur);
  }

  /** Position of a value; falls back to its key, then to the nearest ancestor. */
  value(pointer: string): SourcePos {
    return this.lazy(pointer, (l) => l.value ?? l.key);
  }

  /** Position of a key (for unknown-key errors); falls back like value(). */
  key(pointer: string): SourcePos {
    return this.lazy(pointer, (l) => l.key ?? l.value);
  }

  private lazy(pointer: string, pick: (l: Located) => SourcePos | undefined): SourcePos {
    if (!this.build) return this.find(pointer, pick);
    let hit: SourcePos | undefined;
    const get = () => {
      this.ensure();
      return (hit ??= this.find(pointer, pick));
    };
    // Own enumerable getters: JSON output and equality checks see line/col like plain values.
    return {
      file: this.file,
      get line() {
        return get().line;
      },
      get col() {
        return get().col;
      },
    };
  }

  private find(pointer: string, pick: (l: Located) => SourcePos | undefined): SourcePos {
    let p = pointer;
    for (;;) {
      const l = this.map.get(p);
      const hit = l && pick(l);
      if (hit) return hit;
      if (p === "") return { file: this.file, line: 1, col: 1 };
      p = p.slice(0, p.lastIndexOf("/"));
    }
  }
}

export function pointer(parts: (string | number)[]): string {
  return parts.map((p) => "/" + String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}
