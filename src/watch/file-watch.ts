import { basename, dirname, resolve } from "node:path";
import { CONFIG_FILE_RE, isConfigDir } from "../config/config-dir.js";
import { watch } from "chokidar";
import type { FSWatcher } from "chokidar";

/**
 * Watches config files and the files they reference (blocklists, key files). chokidar watches
 * their directories, not the files: editors save by writing a temp file and renaming it over
 * the original (a new inode), and a file that does not exist yet must be seen when it appears.
 * Events only say "re-read": which file changed does not matter to a level-triggered pass.
 */
export class FileWatch {
  private readonly wanted = new Set<string>();
  private readonly wantedDirs = new Set<string>();
  private readonly dirs = new Set<string>();
  private watcher: FSWatcher | undefined;
  private closed = false;

  constructor(private readonly onChange: (path: string, event: string) => void) {}

  /** Sets the watched files (absolute or relative to the cwd); directories are added as needed. */
  set(files: string[]): void {
    // The pass in flight when the daemon stops ends after close(): a watcher it made would keep
    // the stopped daemon alive (chokidar's watches are persistent handles).
    if (this.closed) return;
    this.wanted.clear();
    this.wantedDirs.clear();
    // A config directory (`-f DIR`): every config file in it is one of ours, including ones added later.
    for (const f of files) (isConfigDir(f) ? this.wantedDirs : this.wanted).add(resolve(f));
    const dirs = [...new Set([...[...this.wanted].map((f) => dirname(f)), ...this.wantedDirs])].filter((d) => !this.dirs.has(d));
    for (const d of dirs) this.dirs.add(d);
    if (!this.watcher) {
      this.watcher = watch([...this.dirs], {
        ignoreInitial: true,
        depth: 0,
        // Everything in those directories but our files (and the directories themselves) is ignored.
        ignored: (p: string) => !this.dirs.has(p) && !this.ours(p),
      });
      this.watcher.on("all", (event, p) => {
        if (this.ours(resolve(p))) this.onChange(p, event);
      });
      // The raw fs.watch event too: chokidar drops what it cannot stat (a symlink loop appearing
      // where the file was), and such a change must still reach the pass that reports it.
      this.watcher.on("raw", (_event, name, opts) => {
        const details = opts as { watchedPath?: string } | undefined;
        const full = details?.watchedPath && name ? resolve(details.watchedPath, name) : "";
        if (full && this.ours(full)) this.onChange(full, "raw");
      });
      this.watcher.on("error", (e: unknown) => {
        // chokidar cannot stat our file (a symlink loop, no permission): the pass reports why.
        const p = (e as NodeJS.ErrnoException).path;
        if (p && this.ours(resolve(p))) this.onChange(p, "error");
      });
    } else if (dirs.length) {
      this.watcher.add(dirs);
    }
  }

  /** A watched file, or a config file (not hidden: the verbs' temp files) in a watched config directory. */
  private ours(p: string): boolean {
    return this.wanted.has(p) || (this.wantedDirs.has(dirname(p)) && CONFIG_FILE_RE.test(p) && !basename(p).startsWith("."));
  }

  files(): string[] {
    return [...this.wanted, ...this.wantedDirs];
  }

  /** Resolves once the initial scan is done (events before it are not reported). */
  ready(): Promise<void> {
    return new Promise((r) => (this.watcher ? this.watcher.once("ready", () => r()) : r()));
  }

  /** whether a watcher is in place (set() since the start, and not closed) */
  get active(): boolean {
    return !!this.watcher;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
