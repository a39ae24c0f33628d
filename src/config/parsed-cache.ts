import { fileStamp, isPlainFile } from "../base/file-stamp.js";
import { loadFile } from "./load.js";
import type { LoadedFile } from "./load.js";
import { validateSchema } from "./schema.js";
import type { Diagnostic } from "../base/diagnostics.js";

/**
 * Config files parsed and schema-checked, again only when a file's stat changes: the daemon
 * loads its files for every attach, detach and pass, and parsing a 1000-network Boltfile (with
 * the position index every source location comes from) costs more than planning the change.
 * Nothing downstream writes to a LoadedFile (test/unit/parsed-cache.test.ts freezes one).
 * A parse error is not kept: the next load reports it again, from the file.
 */
interface Parsed {
  stamp: string;
  lf: LoadedFile;
  schema(): Diagnostic[];
}

export class ParsedFiles {
  private readonly byPath = new Map<string, Parsed>();

  /** The file parsed (throws ConfigError as loadFile does); its schema check made on first use. */
  load(path: string): Parsed {
    const stamp = isPlainFile(path) ? fileStamp(path) : undefined;
    const hit = this.byPath.get(path);
    if (hit && stamp !== undefined && hit.stamp === stamp) return hit;
    const lf = loadFile(path);
    let schema: Diagnostic[] | undefined;
    const entry = { stamp: stamp ?? "", lf, schema: () => (schema ??= validateSchema(lf)) };
    if (stamp !== undefined) this.byPath.set(path, entry);
    else this.byPath.delete(path);
    return entry;
  }
}

/** One per process: the daemon's loader and the mesh's store input read the same files. */
export const PARSED_FILES = new ParsedFiles();
