import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { BoltError, formatDiagnostic } from "../core/diagnostics.js";
import { headRevision, revisionIntent } from "../core/revisions.js";
import { withTarget } from "../cli/commands.js";
import type { GlobalOpts } from "../cli/commands.js";
import type { Diagnostic } from "../core/diagnostics.js";
import { reconcile } from "../core/reconcile.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import { meshStoreInput } from "../../reconcilers/wireguard/store-input.js";
import { makeLogger } from "../cli/logger.js";
import { RuntimeEndpointStore, cliLoader, readRuntimeEndpoints } from "../daemon/runtime-endpoints.js";
import type { CommandRunner } from "../exec/runner.js";
import { StateStore } from "../state/store.js";
import type { Engine } from "./engine.js";
import { CNI_CODE, CniError } from "./errors.js";
import type { BoltCniConfig } from "./request.js";

/**
 * Runtimes call ADD for many containers at once; each waits for the target's lock (one writer
 * per target, src/state/lock.ts) behind the others' applies, so the wait is far longer than a
 * CLI's 10 s default. Whoever takes the lock first plans every attachment recorded by then:
 * the ones behind it find their endpoint there and their apply is a read.
 */
const LOCK_TIMEOUT_S = 120;

const nsLabel = (t: string | null) => (t === null ? "the host namespace" : `netns ${t}`);

/**
 * No daemon: the plugin is the writer. The intent is what every bolt plan of the target uses —
 * the config files of its last applied revision (a CNI config names no files) plus the runtime
 * endpoints recorded in the state store — and the attach is `bolt apply` of it (reconcile:
 * lock, journal, verify, rollback).
 */
export function localEngine(config: BoltCniConfig, runner: CommandRunner): Engine {
  const t = config.target;
  const dir = config.stateDir;
  let files: string[] | undefined;
  /**
   * `bolt apply` of the target's intent, read *under* the target's lock (cmdApply reads the
   * config before it takes the lock: a runtime endpoint recorded meanwhile by a parallel ADD
   * would be missing from its intent, and its apply would delete that endpoint). Whoever holds
   * the lock plans every attachment recorded by then.
   */
  const apply = async (label: string, allowDestroy: boolean): Promise<void> => {
    const o: GlobalOpts = {
      file: filesOf(),
      netns: t ?? undefined,
      stateDir: dir,
      netnsPrefix: process.env.BOLT_NETNS_PREFIX,
      lockTimeout: LOCK_TIMEOUT_S,
      json: true,
      log: await makeLogger(process.env.BOLT_LOG_LEVEL ?? "warn", true),
      runner,
      daemon: false,
      out: () => {},
      err: () => {},
    };
    try {
      await withTarget(o, t, label, async ({ runner: r, store }) => {
        const warnings: Diagnostic[] = [];
        // A mesh on an etcd store is read (and this host's request published) as `bolt apply` does.
        const external = await meshStoreInput(o.file, { write: true, stateDir: dir, target: t, warnings });
        const loaded = cliLoader(dir, t)(o.file, o.netnsPrefix, { external });
        await reconcile({
          registry: REGISTRY,
          runner: r,
          target: t,
          store,
          intent: loaded.intent,
          warnings: [...loaded.warnings, ...warnings],
          command: label,
          log: o.log,
          allowDestroy,
        });
      });
    } catch (e) {
      if (!(e instanceof BoltError)) throw e;
      const lines = e.diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic);
      const msg = lines.length ? lines.join("\n") : e.message;
      // The lock held past the wait: transient, the runtime retries.
      throw new CniError(/is changing this target; waited/.test(msg) ? CNI_CODE.tryAgainLater : CNI_CODE.engine, `bolt apply: ${msg.split("\n")[0]}`, msg);
    }
  };
  const filesOf = (): string[] => (files ??= revisionFiles(dir, t));
  return {
    via: "local",
    netnsPrefix: process.env.BOLT_NETNS_PREFIX ?? "",
    files: filesOf,
    recorded: async (name) => readRuntimeEndpoints(dir, t).find((e) => e.name === name),
    list: async () => readRuntimeEndpoints(dir, t),
    async attach(ep) {
      filesOf();
      const store = new RuntimeEndpointStore(dir);
      try {
        // Recorded before the apply, as the daemon does: a plugin killed mid-apply leaves the
        // record and the journal, and the next apply of the target repairs and converges.
        store.add(t, ep);
        try {
          await apply(`cni ADD ${ep.name}`, false);
        } catch (e) {
          store.remove(t, ep.name);
          throw e;
        }
      } finally {
        store.close();
      }
    },
    async detach(name) {
      // Nothing recorded (DEL twice, or before bolt ever ran here): no store to open, let alone create.
      if (!readRuntimeEndpoints(dir, t).some((e) => e.name === name)) return;
      const store = new RuntimeEndpointStore(dir);
      try {
        const rec = store.list(t).find((e) => e.name === name);
        if (!rec) return;
        store.remove(t, name);
        try {
          // Removing one endpoint of few may be "most of what bolt owns": the attachment's DEL means it.
          await apply(`cni DEL ${name}`, true);
        } catch (e) {
          // Rolled back: the endpoint is still in the kernel, so still recorded.
          store.add(t, rec);
          throw e;
        }
      } finally {
        store.close();
      }
    },
  };
}

/** The files the target was last converged to (`bolt apply -f …`, `bolt watch`): its head revision's intent. */
function revisionFiles(dir: string, t: string | null): string[] {
  const none = new CniError(
    CNI_CODE.invalidConfig,
    `bolt has applied no configuration to ${nsLabel(t)} (state dir ${dir}): its networks are what containers attach to`,
    'apply one first (`bolt apply -f /etc/bolt/bolt-network.toml`), or run `bolt watch` for the target; check "netns" and "stateDir" in the CNI config',
  );
  if (!existsSync(join(dir, "bolt.db"))) throw none;
  const store = StateStore.openReadOnly(dir);
  try {
    const head = headRevision(store, t);
    if (!head) throw none;
    const files = revisionIntent(store, store.revision(head.id)!).files;
    const relative = files.filter((f) => !isAbsolute(f));
    if (relative.length)
      throw new CniError(
        CNI_CODE.invalidConfig,
        `the last apply to ${nsLabel(t)} named its config files relative to its working directory (${relative.join(", ")}): the plugin cannot find them`,
        "apply with absolute paths (`bolt apply -f /etc/bolt/…`), or run `bolt watch` for the target (the plugin then goes through its API)",
      );
    if (!files.length) throw none;
    return files;
  } finally {
    store.close();
  }
}
