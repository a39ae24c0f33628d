import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { ConfigError } from "../core/diagnostics.js";
import type { Diagnostic } from "../core/diagnostics.js";
import type { Intent } from "../core/intent.js";
import { fileStamp } from "../base/file-stamp.js";
import { PARSED_FILES } from "../config/parsed-cache.js";
import type { ParsedFiles } from "../config/parsed-cache.js";
import { loadFiles } from "../cli/config.js";
import { loadFile } from "../config/load.js";
import { validateSchema } from "../config/schema.js";
import type { LoadedFile } from "../config/load.js";
import { normalize } from "../config/normalize.js";
import type { Ns } from "../exec/runner.js";
import { storeError, targetKey } from "../state/store.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import { referencedFiles } from "../watch/referenced-files.js";

/**
 * Runtime endpoints: endpoints attached through the daemon's API (POST /v1/endpoints), not
 * written in any config file. They are part of the target's intent exactly like file-defined
 * ones — the intent is always "the files + the runtime endpoints" — so a file-triggered pass,
 * `bolt plan` and `bolt apply` (through the daemon or not) plan them alike and never delete
 * them. They are kept in the state store (a table of bolt.db) so they survive a restart.
 *
 * They enter the pipeline as one more config file, generated as TOML: the schema, the
 * semantic checks (network exists, address in the subnet and free, names) and the
 * diagnostics with a position are the ones every file gets.
 */

export interface RuntimeEndpoint {
  name: string;
  network: string;
  ip?: string;
  ip6?: string;
  netns?: string;
  /** the interface's name inside the namespace (several endpoints in one namespace: a container on two networks) */
  ifname?: string;
  /** whether it carries the namespace's default route (false: a secondary network, its subnet only) */
  default?: boolean;
}

/** What diagnostics about runtime endpoints name as their file (they have no file). */
export const RUNTIME_FILE = "[runtime endpoints]";

const TABLE =
  "CREATE TABLE IF NOT EXISTS runtime_endpoints (target TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (target, name))";

function parseSpec(row: { spec: string }): RuntimeEndpoint {
  return JSON.parse(row.spec) as RuntimeEndpoint;
}

/** The daemon's read-write handle on the table (its own connection to bolt.db: WAL allows several). */
export class RuntimeEndpointStore {
  private readonly db: Database.Database;

  constructor(stateDir: string) {
    try {
      this.db = new Database(join(stateDir, "bolt.db"));
      this.db.pragma("busy_timeout = 10000");
      this.db.pragma("synchronous = FULL");
      this.db.exec(TABLE);
    } catch (e) {
      throw storeError(e, stateDir);
    }
  }

  list(t: Ns): RuntimeEndpoint[] {
    return (this.db.prepare("SELECT spec FROM runtime_endpoints WHERE target = ? ORDER BY rowid").all(targetKey(t)) as { spec: string }[]).map(parseSpec);
  }

  add(t: Ns, e: RuntimeEndpoint): void {
    this.db
      .prepare("INSERT INTO runtime_endpoints (target, name, spec, created_at) VALUES (?, ?, ?, ?)")
      .run(targetKey(t), e.name, JSON.stringify(e), new Date().toISOString());
  }

  remove(t: Ns, name: string): boolean {
    return this.db.prepare("DELETE FROM runtime_endpoints WHERE target = ? AND name = ?").run(targetKey(t), name).changes === 1;
  }

  close(): void {
    this.db.close();
  }
}

/**
 * The CLI's read of the table (plan and apply without the daemon must plan the same intent).
 * No store, or a store from before runtime endpoints: none. A store that cannot be read is an
 * error: planning without them would delete them.
 */
export function readRuntimeEndpoints(stateDir: string, t: Ns): RuntimeEndpoint[] {
  const file = join(stateDir, "bolt.db");
  if (!existsSync(file)) return [];
  try {
    return readTable(file, t);
  } catch (e) {
    // A store in a directory this process cannot write (a read-only mount, another user's):
    // SQLite's WAL needs its -shm file there, so read a private copy (as StateStore.openReadOnly does).
    const copy = mkdtempSync(join(tmpdir(), "bolt-runtime-"));
    try {
      for (const f of ["bolt.db", "bolt.db-wal"]) if (existsSync(join(stateDir, f))) copyFileSync(join(stateDir, f), join(copy, f));
      return readTable(join(copy, "bolt.db"), t);
    } catch {
      throw storeError(e, stateDir);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }
}

function readTable(file: string, t: Ns): RuntimeEndpoint[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 10000");
    const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runtime_endpoints'").get();
    if (!has) return [];
    return (db.prepare("SELECT spec FROM runtime_endpoints WHERE target = ? ORDER BY rowid").all(targetKey(t)) as { spec: string }[]).map(parseSpec);
  } finally {
    db.close();
  }
}

const q = (s: string) => JSON.stringify(s);

/** The runtime endpoints as a Boltfile (TOML), parsed like any config file. */
export function runtimeFile(eps: RuntimeEndpoint[]): LoadedFile {
  const text = eps
    .map((e) =>
      [
        "[[endpoints]]",
        `name = ${q(e.name)}`,
        `network = ${q(e.network)}`,
        ...(e.ip !== undefined ? [`ip = ${q(e.ip)}`] : []),
        ...(e.ip6 !== undefined ? [`ip6 = ${q(e.ip6)}`] : []),
        ...(e.netns !== undefined ? [`netns = ${q(e.netns)}`] : []),
        ...(e.ifname !== undefined ? [`ifname = ${q(e.ifname)}`] : []),
        ...(e.default !== undefined ? [`default = ${e.default}`] : []),
        "",
      ].join("\n"),
    )
    .join("\n");
  return loadFile(RUNTIME_FILE, text);
}

/** loadIntent's shape (src/cli/config.ts): what plan, apply and the daemon call to read the config. */
export type ConfigLoader = (
  files: string[],
  netnsPrefix: string | undefined,
  opts?: { offline?: boolean; skipAclTests?: boolean; external?: Record<string, unknown> },
) => { intent: Intent; warnings: Diagnostic[] };

/** Endpoint names and network names the files define (before normalizing: cheap, from the parsed data). */
export function defined(files: LoadedFile[]): { endpoints: Map<string, string>; networks: Set<string> } {
  const endpoints = new Map<string, string>();
  const networks = new Set<string>();
  for (const f of files) {
    if (f.kind === "boltfile") {
      for (const e of (f.data.endpoints ?? []) as { name?: unknown }[]) if (typeof e?.name === "string") endpoints.set(e.name, f.path);
      for (const n of Object.keys((f.data.networks ?? {}) as object)) networks.add(n);
    } else if (f.kind === "volantd") {
      const mode = ((f.data.networking ?? {}) as { mode?: unknown }).mode ?? "bridge";
      if (mode === "bridge") networks.add("volant");
    }
  }
  return { endpoints, networks };
}

export interface RuntimeLoad {
  intent: Intent;
  warnings: Diagnostic[];
  /** the runtime endpoints in the intent (the others are shadowed or wait for their network) */
  active: RuntimeEndpoint[];
}

/**
 * load → schema → semantic checks for the files plus the runtime endpoints (the same steps as
 * loadIntent). The rules, so that a file edit never breaks on an API-attached endpoint:
 * - a runtime endpoint whose name a file now defines is shadowed: the file's wins (a warning);
 * - one whose network no file defines any more is left out (a warning; it returns with the network).
 * Any other conflict (the file took its address) fails like an invalid config, naming it.
 */
export function loadWithRuntime(
  files: string[],
  netnsPrefix: string | undefined,
  opts: Parameters<ConfigLoader>[2],
  eps: RuntimeEndpoint[],
  parsed?: ParsedFiles,
): RuntimeLoad {
  opts ??= {};
  const { loaded, diags } = loadFiles(files, parsed);
  const active: RuntimeEndpoint[] = [];
  if (eps.length) {
    const have = defined(loaded);
    for (const e of eps) {
      const file = have.endpoints.get(e.name);
      if (file !== undefined)
        diags.push({ severity: "warning", message: `runtime endpoint "${e.name}" is shadowed by the endpoint of that name in ${file}: the file's is planned` });
      else if (!have.networks.has(e.network))
        diags.push({
          severity: "warning",
          message: `runtime endpoint "${e.name}": network "${e.network}" is in no config file; it is not planned until the network returns`,
        });
      else active.push(e);
    }
    if (active.length) {
      const rf = runtimeFile(active);
      diags.push(...validateSchema(rf));
      loaded.push(rf);
    }
  }
  if (diags.some((d) => d.severity === "error")) throw new ConfigError(diags);
  const { intent, diagnostics } = normalize(loaded, REGISTRY, { netnsPrefix, offline: opts.offline, skipAclTests: opts.skipAclTests, external: opts.external });
  diags.push(...diagnostics);
  if (diags.some((d) => d.severity === "error")) throw new ConfigError(diags);
  // The intent's files are the real ones (saved plans and revisions record them).
  intent.files = [...files];
  return { intent, warnings: diags, active };
}

/** The CLI's loader: the files plus the runtime endpoints recorded for the target. */
export function cliLoader(stateDir: string, t: Ns): ConfigLoader {
  return (files, netnsPrefix, opts) => {
    const { intent, warnings } = loadWithRuntime(files, netnsPrefix, opts, readRuntimeEndpoints(stateDir, t));
    return { intent, warnings };
  };
}

/**
 * The daemon's loader: keeps the last result (and the last error) while neither the files,
 * the files they reference (blocklists, keys) nor the runtime endpoints changed — a stat per
 * file instead of a parse, validate and normalize per request. A config read from a mesh
 * store (`external`) is never cached: the store may have changed.
 */
export class CachedLoader {
  private key = "";
  private value: RuntimeLoad | undefined;
  private error: unknown;
  private watched: string[] = [];
  /** the files as parsed, kept across loads (an attach changes the runtime endpoints, not the files) */
  readonly parsed = PARSED_FILES;

  constructor(private readonly runtime: () => RuntimeEndpoint[]) {}

  /** The runtime endpoints changed (attach, detach): the next load reads again. */
  invalidate(): void {
    this.key = "";
  }

  load(files: string[], netnsPrefix: string | undefined, opts: Parameters<ConfigLoader>[2] = {}): RuntimeLoad {
    const eps = this.runtime();
    if (opts.external) return loadWithRuntime(files, netnsPrefix, opts, eps, this.parsed);
    const head = JSON.stringify([files, netnsPrefix, !!opts.offline, !!opts.skipAclTests, eps, files.map(fileStamp)]);
    if (head + JSON.stringify(this.watched.map(fileStamp)) === this.key) {
      if (this.error) throw this.error;
      return this.value!;
    }
    try {
      const v = loadWithRuntime(files, netnsPrefix, opts, eps, this.parsed);
      this.value = v;
      this.error = undefined;
      this.watched = referencedFiles(v.intent).filter((f) => !files.includes(f));
    } catch (e) {
      this.value = undefined;
      this.error = e;
      this.watched = [];
    }
    // The files' stamps are from before the read: a save during it misses the cache next time.
    this.key = head + JSON.stringify(this.watched.map(fileStamp));
    if (this.error) throw this.error;
    return this.value!;
  }

  /** loadIntent's shape, for cmdPlan / cmdApply. */
  readonly loader: ConfigLoader = (files, netnsPrefix, opts) => {
    const { intent, warnings } = this.load(files, netnsPrefix, opts);
    return { intent, warnings: [...warnings] };
  };
}
