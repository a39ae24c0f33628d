import { EXIT } from "../core/diagnostics.js";
import type { Diagnostic } from "../core/diagnostics.js";
import { ProcessRunner } from "../exec/process-runner.js";
import type { Ns } from "../exec/runner.js";
import { StateStore } from "../state/store.js";
import { WatchController } from "../watch/controller.js";
import { FileWatch } from "../watch/file-watch.js";
import { KernelMonitor } from "../watch/kernel-monitor.js";
import { PlanMemo } from "../core/plan-memo.js";
import { NetnsFilesWatch, namespaceOfPath, namespacesNamed } from "../watch/netns-files-watch.js";
import type { Topic } from "../exec/read-topics.js";
import { ReadCacheRunner } from "../exec/read-cache-runner.js";
import { MetricsServer, WatchMetrics } from "../watch/metrics.js";
import { monitoringConfig } from "../watch/monitoring-config.js";
import type { MonitoringConfig } from "../watch/monitoring-config.js";
import { checkTarget, target } from "./commands.js";
import type { GlobalOpts } from "./commands.js";
import { ApiServer } from "../daemon/api-server.js";
import { CachedLoader, RuntimeEndpointStore } from "../daemon/runtime-endpoints.js";
import { apiSocketPath } from "../daemon/socket.js";
import { SerialController } from "../daemon/serial.js";
import { recoverJournal } from "../core/recover.js";
import { TargetLock } from "../state/lock.js";
import { targetKey } from "../state/store.js";
import { meshStoreInput } from "../../reconcilers/wireguard/store-input.js";
import type { StoreState } from "../../reconcilers/wireguard/store-input.js";
import type { MeshStore } from "../../reconcilers/wireguard/store.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import { registerStatsMetrics } from "../watch/stats-metrics.js";
import { sampleStats } from "./cmd-stats.js";
import { HealthChecker } from "../watch/health.js";
import { readLbDown } from "../core/lb-health.js";
import { lbProbes } from "../../reconcilers/nft/lb-probes.js";
import { NFT } from "../../reconcilers/nft/intent.js";
import { fragment } from "../core/intent.js";
import type { Intent } from "../core/intent.js";
import type { Resource } from "../core/resource.js";

export interface WatchOpts extends GlobalOpts {
  allowDestroy?: boolean;
  resyncMs: number;
  debounceMs: number;
  metricsListen?: string;
  /** the API's unix socket (default: BOLT_API_SOCKET, else <run dir>/<target>.sock) */
  apiSocket?: string;
}

/**
 * `bolt watch`: the daemon. Wires file events, kernel events and the resync timer to the
 * controller, serves metrics and the local API (src/daemon, docs/api.md), and turns signals into passes (SIGHUP) or a clean stop
 * (SIGTERM/SIGINT: the pass in flight finishes, exit 0). Never exits on a bad config or a
 * failed pass: it logs, reports unhealthy, and tries again.
 */
export async function cmdWatch(o: WatchOpts): Promise<number> {
  const t = target(o);
  // Kernel events and /etc/netns changes: the cache forgets, and a pass repairs drift (an owned
  // file changed by hand too; started below, once the API listens).
  // The namespaces the last converged pass named: a namespace file event about another one
  // (a namespace made for somebody else, another daemon's magic DNS file) is not a pass.
  let named: Set<string> | undefined;
  const kernel = kernelCache(o, t, (path) => {
    const ns = path === undefined ? undefined : namespaceOfPath(path);
    if (ns === undefined || ns === t || !named || named.has(ns)) controller.enqueue("kernel");
  });
  const runner = kernel.runner;
  const passMemo = new PlanMemo(runner, t);
  const store = new StateStore(o.stateDir);
  // Endpoints attached through the API: part of every pass's intent (files + runtime endpoints).
  const runtime = new RuntimeEndpointStore(o.stateDir);
  const cache = new CachedLoader(() => runtime.list(t));
  const metrics = new WatchMetrics();
  // Set once the health checker exists; the controller calls it after every converged pass.
  let healthHook: (intent: Intent, desired: Resource[]) => void = () => {};
  // `bolt stats` as metrics, sampled at scrape time (store.originals: what a shallow read needs).
  registerStatsMetrics(metrics.registry, () => sampleStats(runner, t, store.originals(t), false));
  const log = o.log;
  let server: MetricsServer | undefined;
  let listening = "";

  const files = new FileWatch((path, event) => {
    log.debug({ path, event }, "file event");
    controller.enqueue("file", { config: true });
  });

  const applyMonitoring = async (m: MonitoringConfig) => {
    const want = o.metricsListen ?? m.listen ?? "";
    if (want === listening) return;
    await server?.close();
    server = undefined;
    listening = want;
    if (!want) return;
    const s = new MetricsServer(metrics, () => controller.health());
    try {
      const addr = await s.listen(want);
      server = s;
      log.info({ address: addr }, `metrics on http://${addr}/metrics, health on http://${addr}/healthz`);
    } catch (e) {
      // A taken port must not stop reconciling; the next config change may fix it.
      log.error({ listen: want, error: (e as Error).message }, "cannot serve metrics");
    }
  };

  // The mesh store's sessions live as long as the daemon (its status lease is kept alive).
  const sessions = new Map<string, MeshStore>();
  const storeState: StoreState = {};
  const controller: WatchController = new WatchController({
    health: () => (storeState.state ? { store: { ...storeState } } : {}),
    registry: REGISTRY,
    files: o.file,
    target: t,
    runner,
    store,
    stateDir: o.stateDir,
    lockTimeoutMs: o.lockTimeout * 1000,
    allowDestroy: o.allowDestroy,
    log,
    metrics,
    debounceMs: o.debounceMs,
    onConverged: (intent, desired, before) => {
      named = namespacesNamed([...desired, ...before]);
      healthHook(intent, desired);
    },
    // A backend going down or up changes the map by design: not somebody undoing bolt's work.
    desiredInputs: () => readLbDown(t).join(","),
    planMemo: passMemo,
    load: async (f) => {
      // A mesh on an etcd store: publish this host's request, read the mesh (every pass). An
      // unreachable store rejects the pass like a bad config: the kernel keeps what it has.
      const storeWarnings: Diagnostic[] = [];
      const external = await meshStoreInput(f, {
        write: true,
        stateDir: o.stateDir,
        target: t,
        allowDestroy: o.allowDestroy,
        warnings: storeWarnings,
        sessions,
        storeState,
        onStoreChange: () => controller.enqueue("store"),
      });
      const { intent, warnings } = cache.load(f, o.netnsPrefix, { external });
      return { intent, warnings: [...warnings, ...storeWarnings], monitoring: monitoringConfig(f), volatile: !!external };
    },
    onFiles: (list) => files.set(list),
    onMonitoring: (m) => void applyMonitoring(m),
    checkTarget: () => checkTarget(runner, t),
  });

  // The API first: a second daemon for this target stops here, before it watches or writes anything.
  const api = new ApiServer({
    mode: "watch",
    target: t,
    files: o.file,
    netnsPrefix: o.netnsPrefix,
    stateDir: o.stateDir,
    lockTimeout: o.lockTimeout,
    allowDestroy: o.allowDestroy,
    log,
    runner,
    controller,
    store,
    runtime,
    cache,
    passMemo,
  });
  const socket = apiSocketPath(t, o.apiSocket);
  try {
    await api.listen(socket);
  } catch (e) {
    runtime.close();
    store.close();
    throw e;
  }
  log.info({ socket }, `API on unix:${socket}`);

  files.set(o.file);
  await files.ready();
  // --metrics-listen serves from the start, before the first config is read.
  if (o.metricsListen) await applyMonitoring({ detailed: false });
  await kernel.start();
  // Load balancers' health checks: a backend going down or coming back is a pass (one nft transaction).
  const checker = new HealthChecker(runner, t, (down) => {
    log.info({ down }, "load balancer health changed");
    controller.enqueue("health", { immediate: true });
  });
  healthHook = (intent, desired) => checker.setProbes(lbProbes(fragment(intent, NFT), desired));
  // The resync is the deep read the cache cannot replace: it starts from the kernel.
  const resync = setInterval(() => {
    runner.invalidate();
    controller.enqueue("resync");
  }, o.resyncMs);

  // Persistent listeners, never `once`: with a `once` listener gone, a second signal (or a
  // library's handler that re-raises when it is the last listener, as signal-exit does) takes
  // the default action and kills the daemon mid-pass. A second signal means "stop now".
  let signals = 0;
  let onStop: (sig: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => (onStop = resolve));
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) process.exit(EXIT.ERROR);
    onStop(sig);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const onHup = () => {
    log.info({}, "SIGHUP: re-reading the configuration and the kernel now");
    controller.enqueue("sighup", { config: true, immediate: true });
  };
  process.on("SIGHUP", onHup);

  log.info({ files: o.file, target: t, resync_ms: o.resyncMs, debounce_ms: o.debounceMs, pid: process.pid }, "watching");
  controller.enqueue("start", { config: true, immediate: true });

  const sig = await stopped;
  log.info({ signal: sig }, "stopping: finishing the pass in flight");
  clearInterval(resync);
  process.off("SIGHUP", onHup);
  kernel.stop();
  checker.stop();
  await files.close();
  // No new API work; what is queued finishes with the pass in flight.
  const apiClosed = api.close();
  await controller.stop();
  await apiClosed;
  runtime.close();
  await server?.close();
  store.close();
  for (const s of sessions.values()) s.close();
  log.info({ passes: controller.passes }, "stopped");
  return EXIT.OK;
}

/**
 * `bolt daemon`: the local API for a target without a config to watch — `bolt plan`, `apply`
 * and `show` with absolute -f paths run in this warm process (modules loaded, store open), and
 * endpoints attach to the networks of the last apply through it. No passes: nothing is
 * converged unless asked. Like the first pass of `bolt watch`, the start repairs an apply a
 * crash interrupted (the journal), under the target lock.
 */
export async function cmdDaemon(o: GlobalOpts & { apiSocket?: string; allowDestroy?: boolean }): Promise<number> {
  const t = target(o);
  // As in watch: the warm daemon's plans read only what the kernel monitors say changed.
  const kernel = kernelCache(o, t, () => {});
  const runner = kernel.runner;
  const log = o.log;
  await checkTarget(runner, t);
  const store = new StateStore(o.stateDir);
  const runtime = new RuntimeEndpointStore(o.stateDir);
  const cache = new CachedLoader(() => runtime.list(t));
  const controller = new SerialController(t);
  const api = new ApiServer({
    mode: "daemon",
    target: t,
    files: [],
    netnsPrefix: o.netnsPrefix,
    stateDir: o.stateDir,
    lockTimeout: o.lockTimeout,
    allowDestroy: o.allowDestroy,
    log,
    runner,
    controller,
    store,
    runtime,
    cache,
  });
  const socket = apiSocketPath(t, o.apiSocket);
  try {
    const lock = new TargetLock(targetKey(t));
    await lock.acquire(o.lockTimeout * 1000);
    try {
      const rec = await recoverJournal(store, runner, REGISTRY, t);
      if (rec?.problems.length)
        log.warn(
          { pid: rec.pid, startedAt: rec.startedAt, problems: rec.problems },
          "an interrupted apply was undone, but the kernel differs from before it: the next apply decides",
        );
      else if (rec) {
        store.addHistory(t, "daemon", `undid ${rec.undone} op(s) of the apply started ${rec.startedAt} by pid ${rec.pid}`, "applied");
        log.warn({ pid: rec.pid, startedAt: rec.startedAt, undone: rec.undone }, "rolled back an interrupted apply");
      }
    } finally {
      lock.release();
    }
    await api.listen(socket);
  } catch (e) {
    runtime.close();
    store.close();
    throw e;
  }
  log.info({ socket, target: t, pid: process.pid }, `serving the API on unix:${socket}`);
  await kernel.start();
  // No passes here: a timer drops the cache so a change no event reports is seen within this long.
  const refresh = setInterval(() => runner.invalidate(), 30_000);

  let signals = 0;
  let onStop: (sig: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => (onStop = resolve));
  // Persistent listeners, as in cmdWatch: a second signal means "stop now".
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) process.exit(EXIT.ERROR);
    onStop(sig);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const sig = await stopped;
  log.info({ signal: sig }, "stopping: finishing the API work in flight");
  clearInterval(refresh);
  kernel.stop();
  const apiClosed = api.close();
  await controller.drain();
  await apiClosed;
  runtime.close();
  store.close();
  log.info({}, "stopped");
  return EXIT.OK;
}

/**
 * The warm daemon's view of the kernel: reads the kernel monitors (`ip monitor`, `nft monitor`)
 * and inotify on the namespace files cover are answered from the last read until one of them
 * reports a change, which empties the cache and calls `changed`.
 */
const FILES: ReadonlySet<Topic> = new Set(["files"]);

function kernelCache(o: GlobalOpts, t: Ns, changed: (path?: string) => void) {
  // An event empties what it makes stale (the next read is the kernel's): a kernel monitor's,
  // the reads about what it reports (a route, a link, the ruleset); a namespace file's, the
  // namespace list and files. `changed` decides about a pass.
  const monitor = new KernelMonitor(
    t,
    (_source, topics) => {
      runner.invalidate(topics);
      changed();
    },
    o.log,
  );
  const files = new NetnsFilesWatch((path) => {
    runner.invalidate(FILES);
    changed(path);
  });
  const runner = new ReadCacheRunner(
    o.runner ?? new ProcessRunner(),
    t,
    () => monitor.running(),
    (argv) => files.covers(argv),
  );
  return {
    runner,
    async start(): Promise<void> {
      monitor.start();
      files.start();
      await runner.probeIptables();
    },
    stop(): void {
      monitor.stop();
      files.stop();
    },
  };
}
