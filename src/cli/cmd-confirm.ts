import { spawn, spawnSync } from "node:child_process";
import { existsSync, openSync } from "node:fs";
import { join, resolve } from "node:path";
import { BoltError, EXIT } from "../core/diagnostics.js";
import { pendingRevisions, revisionState } from "../core/revisions.js";
import { ProcessRunner } from "../exec/process-runner.js";
import type { Ns } from "../exec/runner.js";
import { TargetLock } from "../state/lock.js";
import { StateStore, targetKey } from "../state/store.js";
import { PKG_ROOT } from "../config/ajv-setup.js";
import { planPrinter, target, withTarget } from "./commands.js";
import type { GlobalOpts } from "./commands.js";
import { reconcile } from "../core/reconcile.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import type { ConfirmOptions } from "../core/reconcile.js";
import { summaryLine, targetName } from "./render-text.js";

/** The launcher of this package (bin/bolt.js under the package root, wherever this module runs from). */
const BOLT_BIN = join(PKG_ROOT, "bin", "bolt.js");

/**
 * Commit-confirmed apply. The timer must outlive the CLI and the SSH session that started it:
 * a transient systemd unit where systemd runs (logind may kill a session's processes on
 * logout), else a detached process in its own session (setsid: no SIGHUP when the terminal
 * goes). Either runs `bolt rollback --if-unconfirmed REV`, which waits for the deadline
 * recorded in the store (re-read each second, so `bolt confirm` ends it within a second).
 */
export function confirmOptions(o: GlobalOpts, timeoutMs: number): ConfirmOptions & { armed?: number } {
  const opts: ConfirmOptions & { armed?: number } = {
    timeoutMs,
    arm(revision: number): string {
      opts.armed = revision;
      const args = [
        "rollback",
        "--if-unconfirmed",
        String(revision),
        "--state-dir",
        resolve(o.stateDir),
        "--log-level",
        "info",
        ...(o.netns !== undefined ? ["--netns", o.netns] : []),
      ];
      const mode = process.env.BOLT_CONFIRM_TIMER ?? "auto";
      if (mode === "systemd" || (mode === "auto" && existsSync("/run/systemd/system"))) {
        const unit = `bolt-confirm-${revision}-${process.pid}`;
        const r = spawnSync(
          "systemd-run",
          [
            "--unit",
            unit,
            "--collect",
            "--quiet",
            "--description",
            `bolt: roll back revision ${revision} unless confirmed`,
            process.execPath,
            BOLT_BIN,
            ...args,
          ],
          { stdio: "ignore" },
        );
        if (r.status === 0) return `unit:${unit}`;
        o.log.warn({ status: r.status, error: r.error?.message }, "systemd-run failed; using a detached process for the confirm timer");
      }
      // The timer's own log: nobody reads its stdout.
      const log = openSync(join(o.stateDir, "confirm-timer.log"), "a", 0o600);
      const child = spawn(process.execPath, [BOLT_BIN, ...args], { detached: true, stdio: ["ignore", log, log], env: process.env });
      child.unref();
      return `pid:${child.pid}`;
    },
  };
  return opts;
}

/** `bolt confirm`: keep the pending apply. */
export async function cmdConfirm(o: GlobalOpts): Promise<number> {
  const t = target(o);
  const store = new StateStore(o.stateDir);
  try {
    const pending = pendingRevisions(store, t);
    if (!pending.length) {
      const last = store.revisions(t).pop();
      if (last?.status === "reverted")
        throw new BoltError(`too late: revision ${last.id} was not confirmed in time and has been rolled back (see \`bolt history\`)`);
      o.out(`Nothing to confirm in ${targetName(t)}.\n`);
      return EXIT.OK;
    }
    const kept: number[] = [];
    for (const p of pending) if (store.transitionRevision(p.id, "pending", "confirmed")) kept.push(p.id);
    if (!kept.length) throw new BoltError(`too late: the rollback of revision ${pending.map((p) => p.id).join(", ")} has already started`);
    store.addHistory(t, "confirm", `confirmed revision ${kept.join(", ")}`, "applied");
    o.out(`Confirmed revision ${kept.join(", ")} in ${targetName(t)}: it stays, the rollback timer is cancelled.\n`);
    return EXIT.OK;
  } finally {
    store.close();
  }
}

/** `bolt rollback --to N`: converge to what revision N recorded, through plan, apply and verify. */
export async function cmdRollbackTo(o: GlobalOpts & { to: number; showCommands?: boolean; confirm?: ConfirmOptions }): Promise<number> {
  const t = target(o);
  return withTarget(o, t, undefined, async ({ runner, store }) => {
    const state = revisionState(store, t, o.to);
    const { plan, result } = await reconcile({
      registry: REGISTRY,
      runner,
      target: t,
      store,
      intent: state.intent,
      warnings: [],
      command: `rollback --to ${o.to}`,
      log: o.log,
      convergeAfterRecovery: true,
      desired: state.desired,
      confirm: o.confirm,
      onPlan: planPrinter(o, o.showCommands),
    });
    if (!o.json)
      o.out(
        result
          ? `\nRolled back to revision ${o.to}: ${summaryLine(plan.changes).replace(/^Plan: /, "")}\n`
          : `${targetName(t)} is already at revision ${o.to}.\n`,
      );
    return EXIT.OK;
  });
}

/**
 * The confirm timer: waits for revision REV's deadline; if it is still pending then, restores
 * the revision before it. Runs detached, so it reports to its log and the history.
 */
export async function cmdRollbackIfUnconfirmed(o: GlobalOpts & { revision: number }): Promise<number> {
  const t = target(o);
  const store = new StateStore(o.stateDir);
  const rev = o.revision;
  try {
    for (;;) {
      const row = store.revision(rev);
      if (!row || row.status !== "pending") {
        o.log.info({ revision: rev, status: row?.status }, "confirm.timer.done");
        return EXIT.OK;
      }
      const left = Date.parse(row.confirm_by ?? "") - Date.now();
      if (!(left > 0)) break;
      await new Promise((r) => setTimeout(r, Math.min(left, 1000)));
    }
    const lock = new TargetLock(targetKey(t));
    // The applying bolt may still hold the lock (a slow apply); a dead one's lock is stale and taken over.
    await lock.acquire(Math.max(o.lockTimeout, 300) * 1000);
    try {
      const row = store.revision(rev)!;
      const previous = row.previous ?? 0;
      if (!store.transitionRevision(rev, "pending", "reverted")) {
        o.log.info({ revision: rev }, "confirm.timer.confirmed");
        return EXIT.OK;
      }
      o.log.warn({ revision: rev, previous }, "confirm.timer.expired: restoring the previous revision");
      const state = revisionState(store, t, previous);
      try {
        const runner = o.runner ?? new ProcessRunner();
        const what = previous ? `revision ${previous}` : "the state before bolt";
        const { plan, result, recovered } = await reconcile({
          registry: REGISTRY,
          runner,
          target: t,
          store,
          intent: state.intent,
          warnings: [],
          command: `rollback: revision ${rev} not confirmed, restored ${what}`,
          log: o.log,
          desired: state.desired,
          convergeAfterRecovery: true,
        });
        // Recorded even when undoing an interrupted apply was all it took (no new revision then).
        const how =
          [recovered ? `undid the interrupted apply (${recovered.undone} op(s))` : "", result ? `${plan.changes.length} change(s)` : ""]
            .filter(Boolean)
            .join(", ") || "nothing to change";
        store.addHistory(t, `rollback --if-unconfirmed ${rev}`, `revision ${rev} not confirmed by ${row.confirm_by}: restored ${what}: ${how}`, "applied");
        o.log.info({ revision: rev, previous, changes: plan.changes.length, recovered: !!recovered }, "confirm.timer.restored");
      } catch (e) {
        store.updateRevision(rev, { status: "revert-failed" });
        store.addHistory(t, `rollback --if-unconfirmed ${rev}`, "", `failed: ${(e as Error).message.split("\n")[0]}`);
        throw e;
      }
      return EXIT.OK;
    } finally {
      lock.release();
    }
  } finally {
    store.close();
  }
}

export function describeDeadline(t: Ns, timeoutMs: number): string {
  const at = new Date(Date.now() + timeoutMs);
  return `Run \`bolt confirm${t === null ? "" : ` --netns ${t}`}\` within ${Math.round(timeoutMs / 1000)}s (before ${at.toLocaleTimeString()}) to keep this; otherwise the previous state is restored automatically.`;
}
