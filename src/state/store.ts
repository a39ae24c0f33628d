import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { BoltError } from "../base/diagnostics.js";
import { readRunJournal, readRunOriginals, writeRunJournal, writeRunOriginals } from "./run-copy.js";
import { userInfo } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Ns } from "../exec/runner.js";

/** What a kind's `commit` hook may record after a verified apply. */
export interface CommitStore {
  setLease(target: Ns, network: string, endpoint: string, ip: string): void;
  releaseLease(target: Ns, endpoint: string): void;
  setOriginal(target: Ns, key: string, value: string): void;
  dropOriginal(target: Ns, key: string): void;
}

/**
 * The embedded durable store under --state-dir (SQLite, WAL, synchronous=FULL so a journal
 * row is on disk before the kernel write it describes). Keyed by target namespace ("" = host).
 */
export interface JournalRow {
  target: string;
  pid: number;
  startedAt: string;
  /** JSON: what to undo and what the kernel looked like before */
  payload: string;
}

export interface HistoryRow {
  id: number;
  target: string;
  at: string;
  user: string;
  command: string;
  summary: string;
  outcome: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS leases (target TEXT NOT NULL, endpoint TEXT NOT NULL, network TEXT NOT NULL, ip TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (target, endpoint));
CREATE TABLE IF NOT EXISTS sysctl_originals (target TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (target, key));
CREATE TABLE IF NOT EXISTS journal (target TEXT PRIMARY KEY, pid INTEGER NOT NULL, started_at TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, at TEXT NOT NULL, user TEXT NOT NULL, command TEXT NOT NULL, summary TEXT NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revision_blobs (hash TEXT PRIMARY KEY, desired TEXT NOT NULL, intent TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revision_chunks (hash TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revision_chunk_refs (blob TEXT NOT NULL, chunk TEXT NOT NULL, PRIMARY KEY (blob, chunk));
CREATE INDEX IF NOT EXISTS revision_chunk_refs_chunk ON revision_chunk_refs (chunk);
CREATE TABLE IF NOT EXISTS revisions (id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, at TEXT NOT NULL, user TEXT NOT NULL, command TEXT NOT NULL, summary TEXT NOT NULL, blob TEXT NOT NULL REFERENCES revision_blobs (hash), status TEXT NOT NULL, previous INTEGER, confirm_by TEXT, timer TEXT);
`;

/**
 * A revision: what one successful apply converged the target to (the desired resources and the
 * intent they were read with), so any revision can be planned towards again. Identical desired
 * states share one blob (a daemon repairing drift records many revisions of the same state).
 * status: applied | pending (awaits \`bolt confirm\`) | confirmed | reverted | failed.
 */
export interface RevisionRow {
  id: number;
  target: string;
  at: string;
  user: string;
  command: string;
  summary: string;
  blob: string;
  status: string;
  /** for a pending revision: the revision restored when it is not confirmed (0: none, bolt owned nothing) */
  previous: number | null;
  confirm_by: string | null;
  /** what fires the rollback of a pending revision: "pid:N" or "unit:NAME" */
  timer: string | null;
}

export const whoAmI = (): string => {
  if (process.env.SUDO_USER ?? process.env.USER) return (process.env.SUDO_USER ?? process.env.USER)!;
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? "");
  }
};

export const targetKey = (t: Ns): string => t ?? "";

/** Revisions kept per target (see pruneRevisions); Junos keeps 50 rollback configurations. */
export const REVISIONS_KEPT = 100;

export class StateStore implements CommitStore {
  private readonly db: Database.Database;
  /** how many revisions each target keeps (pruneRevisions) */
  readonly revisionsKept = REVISIONS_KEPT;

  constructor(
    readonly dir: string,
    readonly = false,
  ) {
    try {
      if (readonly) {
        this.db = new Database(join(dir, "bolt.db"), { readonly: true, fileMustExist: true });
      } else {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        this.db = new Database(join(dir, "bolt.db"));
        this.db.pragma("journal_mode = WAL");
        this.db.pragma("synchronous = FULL");
        this.db.exec(SCHEMA);
      }
      this.db.pragma("busy_timeout = 10000");
      // A file that is no SQLite database fails on its first read, not on open.
      this.db.prepare("SELECT count(*) FROM sqlite_master").get();
    } catch (e) {
      throw storeError(e, dir);
    }
  }

  /**
   * For planning: fails when there is no store yet (nothing leased, nothing recorded). A store
   * in a directory this process cannot write (a read-only mount, another user's) cannot be
   * opened in place (SQLite's WAL needs its -shm file): it is read from a private copy.
   */
  static openReadOnly(dir: string): StateStore {
    try {
      // The constructor's first read fails here when the dir cannot be written (WAL's -shm file).
      return new StateStore(dir, true);
    } catch (e) {
      if (!existsSync(join(dir, "bolt.db")) || !/cannot be written/.test((e as Error).message)) throw e;
      const copy = mkdtempSync(join(tmpdir(), "bolt-state-"));
      for (const f of ["bolt.db", "bolt.db-wal"]) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(copy, f));
      const s = new StateStore(copy, true);
      s.scratch = copy;
      return s;
    }
  }

  /** a private copy this store reads from (removed on close) */
  private scratch: string | undefined;

  close(): void {
    this.db.close();
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
  }

  leases(target: Ns): Map<string, string> {
    const rows = this.db.prepare("SELECT endpoint, ip FROM leases WHERE target = ?").all(targetKey(target)) as { endpoint: string; ip: string }[];
    return new Map(rows.map((r) => [r.endpoint, r.ip]));
  }

  setLease(target: Ns, network: string, endpoint: string, ip: string): void {
    this.db
      .prepare(
        "INSERT INTO leases (target, endpoint, network, ip, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (target, endpoint) DO UPDATE SET network = excluded.network, ip = excluded.ip, updated_at = excluded.updated_at",
      )
      .run(targetKey(target), endpoint, network, ip, new Date().toISOString());
  }

  releaseLease(target: Ns, endpoint: string): void {
    this.db.prepare("DELETE FROM leases WHERE target = ? AND endpoint = ?").run(targetKey(target), endpoint);
  }

  /** The recorded originals; the /run copy fills in what a new (lost and recreated) store lacks. */
  originals(target: Ns): Map<string, string> {
    const rows = this.db.prepare("SELECT key, value FROM sysctl_originals WHERE target = ?").all(targetKey(target)) as { key: string; value: string }[];
    const out = readRunOriginals(targetKey(target));
    for (const r of rows) out.set(r.key, r.value);
    return out;
  }

  setOriginal(target: Ns, key: string, value: string): void {
    // The first recorded value is the one to restore: never overwrite it.
    this.db.prepare("INSERT OR IGNORE INTO sysctl_originals (target, key, value) VALUES (?, ?, ?)").run(targetKey(target), key, value);
    const copy = readRunOriginals(targetKey(target));
    if (!copy.has(key)) writeRunOriginals(targetKey(target), copy.set(key, value));
  }

  dropOriginal(target: Ns, key: string): void {
    this.db.prepare("DELETE FROM sysctl_originals WHERE target = ? AND key = ?").run(targetKey(target), key);
    const copy = readRunOriginals(targetKey(target));
    if (copy.delete(key)) writeRunOriginals(targetKey(target), copy);
  }

  /**
   * The interrupted apply's journal. A store that has never recorded anything for the target (a
   * lost and recreated state dir) takes the run dir's copy: a copy left beside a store that has
   * a history is stale (its clear failed) and is never undone.
   */
  journal(target: Ns): JournalRow | undefined {
    const r = this.db.prepare("SELECT target, pid, started_at AS startedAt, payload FROM journal WHERE target = ?").get(targetKey(target)) as
      | JournalRow
      | undefined;
    if (r) return r;
    if (this.db.prepare("SELECT 1 FROM history WHERE target = ? LIMIT 1").get(targetKey(target))) return undefined;
    const copy = readRunJournal(targetKey(target));
    return copy ? { target: targetKey(target), ...copy } : undefined;
  }

  writeJournal(target: Ns, payload: string): void {
    const row = this.db
      .prepare(
        "INSERT INTO journal (target, pid, started_at, payload) VALUES (?, ?, ?, ?) ON CONFLICT (target) DO UPDATE SET payload = excluded.payload RETURNING pid, started_at AS startedAt",
      )
      .get(targetKey(target), process.pid, new Date().toISOString(), payload) as { pid: number; startedAt: string };
    writeRunJournal(targetKey(target), { pid: row.pid, startedAt: row.startedAt, payload });
  }

  clearJournal(target: Ns): void {
    this.db.prepare("DELETE FROM journal WHERE target = ?").run(targetKey(target));
    writeRunJournal(targetKey(target), undefined);
  }

  addHistory(target: Ns, command: string, summary: string, outcome: string): void {
    this.db
      .prepare("INSERT INTO history (target, at, user, command, summary, outcome) VALUES (?, ?, ?, ?, ?, ?)")
      .run(targetKey(target), new Date().toISOString(), whoAmI(), command, summary, outcome);
  }

  addRevision(r: {
    target: Ns;
    command: string;
    summary: string;
    hash: string;
    desired: string;
    intent: string;
    status: string;
    previous?: number | null;
    confirmBy?: string | null;
    /** the runs of long arrays the blob's desired and intent name (base/json-chunks.ts) */
    chunks?: Map<string, string>;
  }): number {
    // One transaction (a savepoint inside the caller's): a crash leaves no runs or blobs that no revision names.
    return this.db.transaction(() => this.insertRevision(r))();
  }

  private insertRevision(r: Parameters<StateStore["addRevision"]>[0]): number {
    const have = this.db.prepare("SELECT 1 FROM revision_chunks WHERE hash = ?").pluck();
    const put = this.db.prepare("INSERT INTO revision_chunks (hash, body) VALUES (?, ?)");
    // Most runs are already stored (an attach changes a few): look before binding a body.
    for (const [h, body] of r.chunks ?? []) if (!have.get(h)) put.run(h, body);
    const fresh =
      this.db.prepare("INSERT OR IGNORE INTO revision_blobs (hash, desired, intent) VALUES (?, ?, ?)").run(r.hash, r.desired, r.intent).changes === 1;
    // Which blobs name a run, indexed: pruning asks it of every run a dropped blob named.
    const ref = this.db.prepare("INSERT OR IGNORE INTO revision_chunk_refs (blob, chunk) VALUES (?, ?)");
    if (fresh) for (const h of r.chunks?.keys() ?? []) ref.run(r.hash, h);
    const info = this.db
      .prepare("INSERT INTO revisions (target, at, user, command, summary, blob, status, previous, confirm_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .run(targetKey(r.target), new Date().toISOString(), whoAmI(), r.command, r.summary, r.hash, r.status, r.previous ?? null, r.confirmBy ?? null);
    this.pruneRevisions(r.target);
    return Number(info.lastInsertRowid);
  }

  /**
   * Keeps the target's last `keep` revisions (and the blobs they use). A job runner attaching one
   * endpoint per job records a new state on every call (at N=1000 some 140 KB of new runs, 4 MB of
   * JSON before chunking): without a bound the store grows by that on every attach. Never dropped, however old: a pending
   * revision, the revision a pending one restores, and the last applied or confirmed one (the
   * one a commit-confirmed rollback falls back to).
   */
  pruneRevisions(target: Ns, keep = this.revisionsKept): number {
    const rows = this.db.prepare("SELECT id, blob, status, previous FROM revisions WHERE target = ? ORDER BY id DESC").all(targetKey(target)) as Pick<
      RevisionRow,
      "id" | "blob" | "status" | "previous"
    >[];
    if (rows.length <= keep) return 0;
    const held = new Set<number>();
    for (const r of rows) if (r.status === "pending") held.add(r.id).add(r.previous ?? 0);
    const head = rows.find((r) => r.status === "applied" || r.status === "confirmed");
    if (head) held.add(head.id);
    const doomed = rows.slice(keep).filter((r) => !held.has(r.id));
    const del = this.db.prepare("DELETE FROM revisions WHERE id = ?");
    const unused = this.db
      .prepare("SELECT 1 FROM revision_blobs WHERE hash = ? AND NOT EXISTS (SELECT 1 FROM revisions WHERE blob = revision_blobs.hash)")
      .pluck();
    const named = this.db.prepare("SELECT chunk FROM revision_chunk_refs WHERE blob = ?").pluck();
    const delRefs = this.db.prepare("DELETE FROM revision_chunk_refs WHERE blob = ?");
    const delBlob = this.db.prepare("DELETE FROM revision_blobs WHERE hash = ?");
    const delChunk = this.db.prepare("DELETE FROM revision_chunks WHERE hash = ? AND NOT EXISTS (SELECT 1 FROM revision_chunk_refs WHERE chunk = ?)");
    for (const r of doomed) del.run(r.id);
    const chunks = new Set<string>();
    for (const blob of new Set(doomed.map((r) => r.blob))) {
      if (!unused.get(blob)) continue;
      for (const h of named.all(blob) as string[]) chunks.add(h);
      delRefs.run(blob);
      delBlob.run(blob);
    }
    for (const h of chunks) delChunk.run(h, h);
    return doomed.length;
  }

  revision(id: number): (RevisionRow & { desired: string; intent: string }) | undefined {
    return this.db.prepare("SELECT r.*, b.desired, b.intent FROM revisions r JOIN revision_blobs b ON b.hash = r.blob WHERE r.id = ?").get(id) as
      | (RevisionRow & { desired: string; intent: string })
      | undefined;
  }

  /** One run of a chunked revision (base/json-chunks.ts). */
  chunk(hash: string): string | undefined {
    return this.db.prepare("SELECT body FROM revision_chunks WHERE hash = ?").pluck().get(hash) as string | undefined;
  }

  revisions(target: Ns): RevisionRow[] {
    return this.db.prepare("SELECT * FROM revisions WHERE target = ? ORDER BY id").all(targetKey(target)) as RevisionRow[];
  }

  /** Compare-and-set on status: confirm and the rollback timer race for a pending revision; one wins. */
  transitionRevision(id: number, from: string, to: string): boolean {
    return this.db.prepare("UPDATE revisions SET status = ? WHERE id = ? AND status = ?").run(to, id, from).changes === 1;
  }

  updateRevision(id: number, fields: Partial<Pick<RevisionRow, "status" | "confirm_by" | "timer" | "summary">>): void {
    const keys = Object.keys(fields) as (keyof typeof fields)[];
    if (!keys.length) return;
    this.db.prepare(`UPDATE revisions SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE id = ?`).run(...keys.map((k) => fields[k] ?? null), id);
  }

  history(target: Ns): HistoryRow[] {
    return this.db.prepare("SELECT * FROM history WHERE target = ? ORDER BY id").all(targetKey(target)) as HistoryRow[];
  }

  /** All commit bookkeeping of one apply lands together or not at all. */
  transaction(fn: () => void): void {
    this.db.transaction(fn)();
  }
}

/** An environmental fault of the store as one line that says what to do (never a stack trace). */
export function storeError(e: unknown, dir: string): Error {
  if (e instanceof BoltError) return e;
  const code = String((e as { code?: string }).code ?? "");
  const msg = (e as Error)?.message ?? String(e);
  const db = join(dir, "bolt.db");
  if (code === "EEXIST" || code === "ENOTDIR")
    return new BoltError(`the state dir ${dir} is not a directory: move that file away, or choose another with --state-dir`);
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT")
    return new BoltError(
      `the state store ${db} is damaged (${msg}): move it away (mv ${db} ${db}.broken); bolt starts a new one and recognises what it owns from the kernel`,
    );
  if (/READONLY|EACCES|EROFS|EPERM/.test(code) || code === "SQLITE_CANTOPEN")
    return new BoltError(
      `the state store ${db} cannot be written (${msg}): apply records its journal there before writing anything; fix the permissions or mount, or choose another --state-dir`,
    );
  if (code === "SQLITE_FULL" || code === "ENOSPC")
    return new BoltError(`the state store ${db} is on a full disk (${msg}): free space, then run the command again`);
  return new BoltError(`the state store ${db}: ${msg}`);
}
