import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { CommitStore } from "../core/resource.js";
import type { Ns } from "../exec/runner.js";

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
`;

export const targetKey = (t: Ns): string => t ?? "";

export class StateStore implements CommitStore {
  private readonly db: Database.Database;

  constructor(
    readonly dir: string,
    readonly = false,
  ) {
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
  }

  /** For planning: fails when there is no store yet (nothing leased, nothing recorded). */
  static openReadOnly(dir: string): StateStore {
    return new StateStore(dir, true);
  }

  close(): void {
    this.db.close();
  }

  leases(target: Ns): Map<string, string> {
    const rows = this.db.prepare("SELECT endpoint, ip FROM leases WHERE target = ?").all(targetKey(target)) as { endpoint: string; ip: string }[];
    return new Map(rows.map((r) => [r.endpoint, r.ip]));
  }

  setLease(target: Ns, network: string, endpoint: string, ip: string): void {
    this.db.prepare("INSERT INTO leases (target, endpoint, network, ip, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (target, endpoint) DO UPDATE SET network = excluded.network, ip = excluded.ip, updated_at = excluded.updated_at").run(targetKey(target), endpoint, network, ip, new Date().toISOString());
  }

  releaseLease(target: Ns, endpoint: string): void {
    this.db.prepare("DELETE FROM leases WHERE target = ? AND endpoint = ?").run(targetKey(target), endpoint);
  }

  originals(target: Ns): Map<string, string> {
    const rows = this.db.prepare("SELECT key, value FROM sysctl_originals WHERE target = ?").all(targetKey(target)) as { key: string; value: string }[];
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  setOriginal(target: Ns, key: string, value: string): void {
    // The first recorded value is the one to restore: never overwrite it.
    this.db.prepare("INSERT OR IGNORE INTO sysctl_originals (target, key, value) VALUES (?, ?, ?)").run(targetKey(target), key, value);
  }

  dropOriginal(target: Ns, key: string): void {
    this.db.prepare("DELETE FROM sysctl_originals WHERE target = ? AND key = ?").run(targetKey(target), key);
  }

  journal(target: Ns): JournalRow | undefined {
    const r = this.db.prepare("SELECT target, pid, started_at AS startedAt, payload FROM journal WHERE target = ?").get(targetKey(target)) as JournalRow | undefined;
    return r;
  }

  writeJournal(target: Ns, payload: string): void {
    this.db.prepare("INSERT INTO journal (target, pid, started_at, payload) VALUES (?, ?, ?, ?) ON CONFLICT (target) DO UPDATE SET payload = excluded.payload").run(targetKey(target), process.pid, new Date().toISOString(), payload);
  }

  clearJournal(target: Ns): void {
    this.db.prepare("DELETE FROM journal WHERE target = ?").run(targetKey(target));
  }

  addHistory(target: Ns, command: string, summary: string, outcome: string): void {
    const user = process.env.SUDO_USER ?? process.env.USER ?? String(process.getuid?.() ?? "");
    this.db.prepare("INSERT INTO history (target, at, user, command, summary, outcome) VALUES (?, ?, ?, ?, ?, ?)").run(targetKey(target), new Date().toISOString(), user, command, summary, outcome);
  }

  history(target: Ns): HistoryRow[] {
    return this.db.prepare("SELECT * FROM history WHERE target = ? ORDER BY id").all(targetKey(target)) as HistoryRow[];
  }

  /** All commit bookkeeping of one apply lands together or not at all. */
  transaction(fn: () => void): void {
    this.db.transaction(fn)();
  }
}
