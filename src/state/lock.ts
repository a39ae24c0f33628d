import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { BoltError } from "../base/diagnostics.js";
import { RUN_DIR } from "./run-copy.js";

/**
 * One writer per target: an O_EXCL lock file holding the owner's pid. A lock whose pid is
 * gone (kill -9) is stale and taken over; a live one is waited for up to `waitMs`. The lock
 * belongs to the target, not to a state dir: namespaces are machine-wide, so two applies with
 * different --state-dir on one target must still wait for each other. It lives in
 * /run/bolt/locks (tmpfs: no stale lock survives a reboot); BOLT_LOCK_DIR moves it.
 */
export const LOCK_DIR = () => process.env.BOLT_LOCK_DIR || join(RUN_DIR(), "locks");

export class TargetLock {
  private fd: number | undefined;
  readonly path: string;

  constructor(target: string, dir = LOCK_DIR()) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new BoltError(
        `cannot create the lock directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (changing the kernel needs root; BOLT_LOCK_DIR chooses another directory)`,
      );
    }
    this.path = join(dir, `${target || "_host"}.lock`);
  }

  async acquire(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        this.fd = openSync(this.path, "wx", 0o600);
        writeSync(this.fd, `${process.pid}\n`);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const holder = this.holder();
      // An empty file may be a lock being written this instant: only a dead pid is stale.
      if (holder === undefined ? this.ageMs() > 2000 : !alive(holder)) {
        try {
          unlinkSync(this.path);
        } catch {
          /* another waiter removed it first */
        }
        continue;
      }
      if (Date.now() >= deadline) {
        throw new BoltError(
          `another bolt (pid ${holder ?? "?"}) is changing this target; waited ${Math.round(waitMs / 1000)}s for its lock ${this.path} (use --lock-timeout to wait longer)`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }

  private ageMs(): number {
    try {
      return Date.now() - statSync(this.path).mtimeMs;
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  }

  private holder(): number | undefined {
    try {
      const pid = Number(readFileSync(this.path, "utf8").trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
