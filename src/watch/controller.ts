import { createHash } from "node:crypto";
import { stringifyBig } from "../core/json-bigint.js";
import type { Logger } from "pino";
import { BoltError, formatDiagnostic } from "../core/diagnostics.js";
import type { Diagnostic } from "../core/diagnostics.js";
import type { Intent } from "../core/intent.js";
import type { Registry } from "../core/registry.js";
import type { CommandRunner, Ns } from "../exec/runner.js";
import { TargetLock } from "../state/lock.js";
import type { StateStore } from "../state/store.js";
import { targetKey } from "../state/store.js";
import { reconcile } from "../core/reconcile.js";
import { MassDestroyError } from "../core/plan.js";
import { Debouncer } from "./debounce.js";
import { DEFAULT_FIGHT_POLICY, FightDetector, driftSignature } from "./fight.js";
import type { Fight, FightPolicy } from "./fight.js";
import type { WatchMetrics } from "./metrics.js";
import type { MonitoringConfig } from "./monitoring-config.js";
import { referencedFiles } from "./referenced-files.js";
import type { Resource } from "../core/resource.js";
import type { PlanMemo } from "../core/plan-memo.js";

/** `api`: the daemon's API changed the intent (an endpoint attached or detached) */
/** How long a mesh store change waits for more of its kind before its pass (see enqueue). */
export const STORE_DEBOUNCE_MS = 50;

export type Trigger = "start" | "file" | "kernel" | "resync" | "sighup" | "retry" | "store" | "api" | "health";

export interface LoadedConfig {
  intent: Intent;
  warnings: Diagnostic[];
  monitoring: MonitoringConfig;
  /** the config reads more than its files (a mesh's store): load it again on every pass */
  volatile?: boolean;
}

export interface ControllerOptions {
  files: string[];
  target: Ns;
  runner: CommandRunner;
  registry: Registry;
  store: StateStore;
  stateDir: string;
  lockTimeoutMs: number;
  /** more for /healthz (the mesh store's state) */
  health?: () => Record<string, unknown>;
  /** apply a config that deletes most of what bolt owns (otherwise it is rejected like an invalid one) */
  allowDestroy?: boolean;
  log: Logger;
  metrics: WatchMetrics;
  debounceMs: number;
  /** load → validate → normalize the files; throws ConfigError */
  load: (files: string[]) => LoadedConfig | Promise<LoadedConfig>;
  /** the set of files to watch changed (config files + what they reference) */
  onFiles?: (files: string[]) => void;
  /** the [monitoring] section changed */
  onMonitoring?: (m: MonitoringConfig) => void;
  /** the target exists (a missing netns is a failed pass, not a crash) */
  checkTarget?: () => Promise<void>;
  /** after a pass that left the kernel converged: the intent, the resources it converged to, and what it read before */
  onConverged?: (intent: Intent, desired: Resource[], before: Resource[]) => void;
  /**
   * what besides the files decides the desired state (the load balancers' recorded health):
   * changes it brings are bolt's own, never drift to count towards a fight
   */
  desiredInputs?: () => string;
  fightPolicy?: FightPolicy;
  now?: () => number;
  /** the memo of the last no-op pass (core/plan-memo.ts): a store change that changes no intent reads only what no event covers */
  planMemo?: PlanMemo;
}

export interface PassReport {
  at: string;
  trigger: Trigger[];
  outcome: "applied" | "noop" | "invalid_config" | "failed" | "backoff";
  changes: number;
  drift: boolean;
  duration_ms: number;
  revision?: number;
  error?: string;
}

/**
 * The level-triggered controller (controller-runtime's shape): events only enqueue; a pass
 * reads the config (when it changed) and the kernel, plans and applies through the same path
 * as `bolt apply` (lock, journal, verify, rollback, revision). One pass at a time; events
 * during a pass schedule one more. An invalid config keeps the last good one and leaves the
 * kernel alone; later passes (resync, kernel events) keep converging to the last good one.
 */
export class WatchController {
  private readonly triggers = new Set<Trigger>();
  private readonly debouncer: Debouncer;
  private readonly fights: FightDetector;
  private readonly now: () => number;
  private configDirty = true;
  private good: (LoadedConfig & { digest: string }) | undefined;
  private configError: string | undefined;
  private appliedDigest: string | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;
  private notBefore = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastPass: PassReport | undefined;
  private lastSuccessAt: string | undefined;
  private monitoringKey = "";
  /** API work in progress (runExclusive): passes wait for it, it waits for the pass in flight */
  private busy = 0;
  private exclusiveTail: Promise<void> = Promise.resolve();
  passes = 0;

  constructor(private readonly o: ControllerOptions) {
    this.now = o.now ?? Date.now;
    this.fights = new FightDetector(o.fightPolicy ?? DEFAULT_FIGHT_POLICY);
    this.debouncer = new Debouncer(() => this.kick(), o.debounceMs);
  }

  /**
   * Something happened: a pass will follow (after the debounce, or at once). A change in the
   * mesh store waits only STORE_DEBOUNCE_MS: etcd sends one watch response per transaction (a
   * join, an approval, a revoke is one), there is no burst of saves to collapse, and every host
   * of the mesh waits this long before it adds or drops the peer.
   */
  enqueue(trigger: Trigger, opts: { config?: boolean; immediate?: boolean } = {}): void {
    if (this.stopped) return;
    this.triggers.add(trigger);
    if (opts.config) this.configDirty = true;
    if (opts.immediate) this.debouncer.flush();
    else this.debouncer.trigger(trigger === "store" ? STORE_DEBOUNCE_MS : undefined);
  }

  /** Finishes the pass in flight (and the API work queued), then no more. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.debouncer.cancel();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.running;
    await this.exclusiveTail;
  }

  /**
   * Runs `fn` (an apply, attach or detach through the API) with no pass beside it: one writer
   * per target inside the daemon too, without the two waiting for each other's lock file.
   * Calls queue in order; a pass due meanwhile runs after them.
   */
  async runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.exclusiveTail;
    let release!: () => void;
    this.exclusiveTail = new Promise<void>((r) => (release = r));
    try {
      await previous;
      while (this.running) await this.running;
      // No await between the check above and this: kick() sees busy before it could start a pass.
      this.busy++;
      try {
        return await fn();
      } finally {
        this.busy--;
      }
    } finally {
      release();
      if (this.triggers.size && !this.stopped && !this.busy) this.debouncer.trigger();
    }
  }

  health(): { healthy: boolean; body: unknown } {
    const fights = this.fights.fights(this.now()).filter((f) => f.until > this.now());
    // Backing off from a fight is not healthy either: something keeps undoing the configuration.
    const healthy = !!this.lastPass && (this.lastPass.outcome === "applied" || this.lastPass.outcome === "noop") && !this.configError && !fights.length;
    return {
      healthy,
      body: {
        status: !this.lastPass ? "starting" : healthy ? "ok" : "failing",
        target: this.o.target,
        files: this.o.files,
        config: this.configError
          ? { valid: false, error: this.configError, applying: this.good ? "the last good configuration" : "nothing" }
          : { valid: !!this.good },
        last_pass: this.lastPass ?? null,
        last_success_at: this.lastSuccessAt ?? null,
        passes: this.passes,
        fighting: fights.map(fightJson),
        ...this.o.health?.(),
      },
    };
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) return; // the pass in flight re-checks the queue when it ends
    if (this.busy) return; // runExclusive re-checks the queue when the API work ends
    // After failures, kernel and resync events wait (our own rollback's events must not loop);
    // a config change, SIGHUP or a change in the mesh store (a new desired state, not an echo of
    // our rollback: an unchanged status is never rewritten) goes at once.
    const wait = this.notBefore - this.now();
    if (wait > 0 && !this.configDirty && !this.triggers.has("store")) {
      this.schedule(wait);
      return;
    }
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.triggers.size && !this.stopped) this.debouncer.trigger();
    });
  }

  private schedule(ms: number): void {
    if (this.stopped) return; // a timer would keep a stopping daemon alive
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.enqueue("retry", { immediate: true });
    }, ms);
  }

  private async pass(): Promise<void> {
    const t0 = performance.now();
    const trigger = [...this.triggers];
    this.triggers.clear();
    this.passes++;
    const report: PassReport = { at: new Date(this.now()).toISOString(), trigger, outcome: "noop", changes: 0, drift: false, duration_ms: 0 };
    const { metrics, log } = this.o;
    const previous = this.good;
    // The clock before anything is read: a pass whose reads an event overtook is not remembered.
    const started = this.o.planMemo?.begin();
    try {
      // A store-backed config is read again every pass (level-triggered: the store may have changed).
      if (this.configDirty || this.good?.volatile) {
        this.configDirty = false;
        if (!(await this.loadConfig())) {
          report.outcome = "invalid_config";
          report.error = this.configError;
          return;
        }
      }
      const good = this.good;
      if (!good) {
        report.outcome = "invalid_config";
        report.error = this.configError;
        return;
      }
      const inputs = `${good.digest}|${this.o.desiredInputs?.() ?? ""}`;
      const configChanged = inputs !== this.appliedDigest;
      await this.o.checkTarget?.();
      const lock = new TargetLock(targetKey(this.o.target));
      await lock.acquire(this.o.lockTimeoutMs);
      let signature = "";
      try {
        const r = await reconcile({
          registry: this.o.registry,
          runner: this.o.runner,
          target: this.o.target,
          store: this.o.store,
          intent: good.intent,
          warnings: [...good.warnings],
          command: "watch",
          log,
          convergeAfterRecovery: true,
          allowDestroy: this.o.allowDestroy,
          // A full resync also enters endpoint namespaces: drift inside them raises no event here.
          deep: trigger.includes("resync"),
          memo: this.o.planMemo ? { memo: this.o.planMemo, started, intentKey: inputs } : undefined,
          onPlan: (plan) => {
            if (configChanged || !plan.changes.length) return;
            signature = driftSignature(plan.changes);
            const until = this.fights.blocked(signature, this.now());
            if (until !== undefined) throw new Backoff(signature, until);
          },
        });
        report.changes = r.result ? r.plan.changes.length : 0;
        report.revision = r.revision;
        if (report.changes) metrics.changesApplied.inc(report.changes);
        if (report.changes && !configChanged) {
          report.drift = true;
          metrics.driftRepairs.inc();
          const fight = this.fights.repaired(signature, this.now());
          if (fight) {
            metrics.fightsDetected.inc();
            log.warn(
              { fight: fightJson(fight) },
              `another writer keeps undoing bolt's changes (${fight.drift}): repaired ${fight.repairs} times; leaving it alone until ${new Date(fight.until).toISOString()}`,
            );
          }
        }
        this.appliedDigest = inputs;
        report.outcome = report.changes ? "applied" : "noop";
        const kinds = new Map<string, number>();
        for (const d of r.plan.desired) kinds.set(d.kind, (kinds.get(d.kind) ?? 0) + 1);
        metrics.setResources(kinds);
        if (good.monitoring.detailed) metrics.setCounters(Object.assign({}, ...r.plan.before.map((b) => b.counters ?? {})) as Record<string, string>);
        this.failures = 0;
        this.notBefore = 0;
        this.lastSuccessAt = new Date(this.now()).toISOString();
        metrics.lastSuccess.set(this.now() / 1000);
        this.o.onConverged?.(good.intent, r.plan.desired, r.plan.before);
      } finally {
        lock.release();
      }
    } catch (e) {
      if (e instanceof MassDestroyError && this.good !== previous) {
        // A save that empties (or guts) the config: rejected like an invalid one, and the last
        // good configuration stays in force (the next pass repairs drift with it).
        this.good = previous;
        this.configError = `${this.o.files.join(", ")}: ${e.message}`;
        report.outcome = "invalid_config";
        report.error = this.configError;
        metrics.failures.inc({ reason: "config" });
        metrics.configValid.set(0);
        log.error({ kept: previous ? "last good configuration" : "nothing applied yet" }, `config rejected, the kernel is left as it is: ${e.message}`);
        if (previous) this.schedule(0);
      } else if (e instanceof Backoff) {
        report.outcome = "backoff";
        report.error = `not repairing "${e.signature}" until ${new Date(e.until).toISOString()}: another writer keeps undoing it`;
        this.schedule(e.until - this.now());
      } else {
        report.outcome = "failed";
        report.error = e instanceof BoltError ? e.message : ((e as Error)?.stack ?? String(e));
        metrics.failures.inc({ reason: "apply" });
        this.failures++;
        const delay = Math.min(60_000, 1000 * 2 ** Math.min(this.failures - 1, 6));
        this.notBefore = this.now() + delay;
        this.schedule(delay);
      }
    } finally {
      report.duration_ms = Math.round(performance.now() - t0);
      this.lastPass = report;
      metrics.passes.inc({ outcome: report.outcome });
      metrics.duration.observe(report.duration_ms / 1000);
      metrics.fighting.set(this.fights.fights(this.now()).some((f) => f.until > this.now()) ? 1 : 0);
      const level = report.outcome === "failed" || report.outcome === "invalid_config" ? "error" : report.outcome === "backoff" ? "warn" : "info";
      log[level](
        {
          trigger: report.trigger,
          outcome: report.outcome,
          changes: report.changes,
          drift: report.drift,
          duration_ms: report.duration_ms,
          ...(report.revision ? { revision: report.revision } : {}),
          ...(report.error ? { error: report.error } : {}),
        },
        "pass",
      );
    }
  }

  /** Reads the files; false (and the last good config kept) when they do not validate. */
  private async loadConfig(): Promise<boolean> {
    const { log, metrics } = this.o;
    let loaded: LoadedConfig;
    try {
      loaded = await this.o.load(this.o.files);
    } catch (e) {
      if (!(e instanceof BoltError)) throw e;
      const errors = e.diagnostics.filter((d) => d.severity === "error");
      this.configError = errors.length ? errors.map(formatDiagnostic).join("\n") : e.message;
      metrics.failures.inc({ reason: "config" });
      metrics.configValid.set(0);
      log.error(
        { diagnostics: errors.map(formatDiagnostic), kept: this.good ? "last good configuration" : "nothing applied yet" },
        `config rejected, the kernel is left as it is: ${this.configError.split("\n")[0]}`,
      );
      // Still watch what the last good config referenced, and the files themselves.
      this.o.onFiles?.([...this.o.files, ...(this.good ? referencedFiles(this.good.intent) : [])]);
      return false;
    }
    const digest = createHash("sha256").update(stringifyBig(loaded.intent)).digest("hex");
    this.good = { ...loaded, digest };
    this.configError = undefined;
    metrics.configValid.set(1);
    for (const w of loaded.warnings) log.warn({ warning: formatDiagnostic(w) }, "config warning");
    this.o.onFiles?.([...this.o.files, ...referencedFiles(loaded.intent)]);
    const key = JSON.stringify(loaded.monitoring);
    if (key !== this.monitoringKey) {
      this.monitoringKey = key;
      this.o.onMonitoring?.(loaded.monitoring);
    }
    return true;
  }
}

class Backoff extends Error {
  constructor(
    readonly signature: string,
    readonly until: number,
  ) {
    super("backoff");
  }
}

function fightJson(f: Fight) {
  return { drift: f.drift, repairs_in_window: f.repairs, backoff_level: f.level, until: new Date(f.until).toISOString() };
}
