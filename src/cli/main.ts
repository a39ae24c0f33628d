import yargs from "yargs";
import type { Argv } from "yargs";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BoltError, EXIT, formatDiagnostic } from "../core/diagnostics.js";
import type { GlobalOpts } from "./commands.js";
import { makeLogger } from "./logger.js";
import { parseDuration } from "../core/duration.js";
import { PKG_ROOT } from "../config/ajv-setup.js";
import type { ProgressMode } from "./progress.js";

/** `--progress`: on a terminal a "Still applying…" line after a second (auto); json: one event per wave on stderr. */
const PROGRESS_OPTION = { choices: ["auto", "never", "json"], default: "auto", describe: "progress of a long apply on stderr" } as const;

// The command modules are imported when their command runs, not at startup: in the bundle each
// is a module initialised on first import (scripts/bundle.mjs), so `validate` never evaluates
// the watch daemon (chokidar, prom-client), the mesh admin (etcd) or the confirm timers.
const commands = () => import("./commands.js");
const meshCmds = () => import("./cmd-mesh.js");
const confirmCmds = () => import("./cmd-confirm.js");

/** bin/bolt-cni's entry: the CNI plugin (src/cni), in the same bundle, evaluated only when it runs. */
export const cni = () => import("../cni/plugin.js");

const out = (s: string) => process.stdout.write(s);
const err = (s: string) => process.stderr.write(s);
/** The package's version; bin/bolt.js answers `--version` from the same file without loading the bundle. */
export const packageVersion = (): string => (JSON.parse(readFileSync(join(PKG_ROOT, "package.json"), "utf8")) as { version: string }).version;

interface RawArgs {
  file?: string[];
  netns?: string;
  "state-dir": string;
  "netns-prefix"?: string;
  "lock-timeout": number;
  "log-level": string;
  json?: boolean;
  [k: string]: unknown;
}

/** The CLI: yargs commands and the one place errors become messages and exit codes. */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.OK;
  const version = packageVersion();
  // yargs' inferred argument types do not survive shared builders; RawArgs is the contract.
  const run =
    (fn: (o: GlobalOpts, a: RawArgs) => Promise<number>, needsFiles = true) =>
    // biome-ignore lint/suspicious/noExplicitAny: yargs' builder types do not survive shared builders
    async (a: any) => {
      if (needsFiles && !a.file?.length) throw new BoltError("no config file given: use -f bolt-network.toml (repeatable)");
      const log = await makeLogger(a["log-level"], a.json);
      const o: GlobalOpts = {
        file: a.file ?? [],
        netns: a.netns,
        stateDir: a["state-dir"],
        netnsPrefix: a["netns-prefix"],
        lockTimeout: a["lock-timeout"],
        json: a.json,
        log,
        out,
        err,
        daemon: a.daemon as boolean | undefined,
      };
      code = await fn(o, a);
    };
  // biome-ignore lint/suspicious/noExplicitAny: yargs' builder types do not survive shared builders
  const files = (y: Argv<any>): Argv<any> =>
    y.option("file", { alias: "f", type: "string", array: true, describe: "config file (bolt-network.toml, ghostwire.toml, volantd.yaml); repeatable" });
  // biome-ignore lint/suspicious/noExplicitAny: yargs' builder types do not survive shared builders
  const parser = (yargs(argv) as Argv<any>)
    .scriptName("bolt")
    .usage("$0 <command> [options]\n\nDeclarative Linux networking: plan, apply and verify bridges, endpoints and sysctls against the kernel.")
    .option("netns", { type: "string", describe: "read and write inside this existing network namespace" })
    .option("state-dir", { type: "string", default: process.env.BOLT_STATE_DIR ?? "/var/lib/bolt", describe: "leases, journal, history" })
    .option("netns-prefix", { type: "string", default: process.env.BOLT_NETNS_PREFIX, describe: "prefix for every endpoint namespace name" })
    .option("lock-timeout", { type: "number", default: 10, describe: "seconds to wait for another bolt working on the same target" })
    .option("log-level", {
      type: "string",
      default: process.env.BOLT_LOG_LEVEL ?? "warn",
      choices: ["trace", "debug", "info", "warn", "error", "fatal", "silent"],
    })
    .option("json", { type: "boolean", describe: "machine-readable output" })
    .option("daemon", {
      type: "boolean",
      default: true,
      describe: "plan, apply and show go through the API of a daemon serving the target (--no-daemon: do the work here)",
    })
    .command(
      "validate",
      "check config files offline (schema, addresses, references)",
      files,
      run(async (o) => (await commands()).cmdValidate(o)),
    )
    .command(
      "plan",
      "show what apply would change (writes nothing)",
      (y) =>
        files(y)
          .option("detailed-exitcode", { type: "boolean", describe: "exit 0 when no changes, 2 when there are changes, 1 on error" })
          .option("deep", { type: "boolean", describe: "also enter every endpoint namespace to check the inside" })
          .option("show-commands", { type: "boolean", describe: "print the kernel commands under each change" })
          .option("destroy", { type: "boolean", describe: "plan the removal of everything bolt owns" })
          .option("out", { type: "string", describe: "save the plan to this file; `bolt apply FILE` applies exactly it" })
          .option("state", { type: "string", describe: "plan against a state exported with `bolt state export` (no kernel, no root); `none` = an empty host" })
          .option("format", { type: "string", choices: ["text", "json", "markdown"], describe: "output format (markdown: for a pull-request comment)" }),
      run(
        async (o, a) =>
          (await commands()).cmdPlan({
            ...o,
            detailedExitcode: a["detailed-exitcode"] as boolean,
            deep: a.deep as boolean,
            showCommands: a["show-commands"] as boolean,
            destroy: a.destroy as boolean,
            format: a.format as string | undefined,
            outFile: a.out as string | undefined,
            stateFile: a.state as string | undefined,
          }),
        false,
      ),
    )
    .command(
      "apply [plan]",
      "make the kernel match the config (verified, rolled back on failure); or apply a plan saved with `plan --out`",
      (y) =>
        files(y)
          .positional("plan", { type: "string", describe: "a plan saved with `bolt plan --out FILE`" })
          .option("show-commands", { type: "boolean" })
          .option("deep", { type: "boolean" })
          .option("allow-destroy", { type: "boolean", describe: "apply even if it deletes most of what bolt owns (an empty config deletes everything)" })
          .option("progress", PROGRESS_OPTION)
          .option("confirm-timeout", {
            type: "string",
            describe: "keep the change only if `bolt confirm` runs within this time (e.g. 60s); otherwise restore the previous revision",
          }),
      run(async (o, a) => {
        const timeout = a["confirm-timeout"] === undefined ? undefined : parseDuration(a["confirm-timeout"] as string, "--confirm-timeout");
        const confirm = timeout === undefined ? undefined : (await confirmCmds()).confirmOptions(o, timeout);
        if (!a.plan && !o.file.length) throw new BoltError("no config file given: use -f bolt-network.toml (repeatable), or give a saved plan file");
        const rc = a.plan
          ? await (await import("./cmd-apply-plan.js")).cmdApplyPlan({ ...o, planFile: a.plan as string, showCommands: a["show-commands"] as boolean, confirm })
          : await (await commands()).cmdApply({
              ...o,
              showCommands: a["show-commands"] as boolean,
              deep: a.deep as boolean,
              confirm,
              allowDestroy: a["allow-destroy"] as boolean,
              progress: a.progress as ProgressMode,
            });
        // Only when something was applied (and so a rollback timer armed).
        if (confirm?.armed !== undefined && rc === 0 && !o.json) out(`\n${(await confirmCmds()).describeDeadline(o.netns ?? null, confirm.timeoutMs)}\n`);
        return rc;
      }, false),
    )
    .command(
      "destroy",
      "remove everything bolt owns in the target and restore recorded sysctls",
      (y) => files(y).option("show-commands", { type: "boolean" }).option("progress", PROGRESS_OPTION),
      run(
        async (o, a) => (await commands()).cmdApply({ ...o, destroy: true, showCommands: a["show-commands"] as boolean, progress: a.progress as ProgressMode }),
        false,
      ),
    )
    .command(
      "show",
      "what bolt owns right now, read from the kernel",
      (y) => y.option("deep", { type: "boolean" }),
      run(async (o, a) => (await commands()).cmdShow({ ...o, deep: a.deep as boolean }), false),
    )
    .command(
      "stats",
      "live traffic of what bolt owns: networks, endpoints, WireGuard peers, nft rule counters, conntrack entries",
      (y) =>
        y
          .option("watch", { type: "number", describe: "sample every N seconds and show per-second rates (Ctrl-C stops)" })
          .option("rtt", { type: "boolean", describe: "ping each WireGuard peer through its tunnel" })
          .option("count", { type: "number", hidden: true, describe: "with --watch: stop after this many samples" }),
      run(
        async (o, a) =>
          (await import("./cmd-stats.js")).cmdStats({
            ...o,
            watch: a.watch as number | undefined,
            rtt: a.rtt as boolean,
            count: a.count as number | undefined,
          }),
        false,
      ),
    )
    .command(
      "rollback",
      "undo an apply that was interrupted (kill -9, power loss); with --to N, return to revision N (`bolt history`)",
      (y) =>
        y
          .option("to", { type: "number", describe: "revision to converge to (0: the state before bolt owned anything)" })
          .option("discard-journal", {
            type: "boolean",
            describe: "drop an interrupted apply's journal without undoing it (when it is unreadable); plan then shows what the kernel has",
          })
          .option("if-unconfirmed", {
            type: "number",
            hidden: true,
            describe: "the confirm timer: restore the previous revision unless this one was confirmed",
          })
          .option("show-commands", { type: "boolean" }),
      run(
        async (o, a) =>
          a["discard-journal"]
            ? (await commands()).cmdDiscardJournal(o)
            : a["if-unconfirmed"] !== undefined
              ? (await confirmCmds()).cmdRollbackIfUnconfirmed({ ...o, revision: a["if-unconfirmed"] as number })
              : a.to !== undefined
                ? (await confirmCmds()).cmdRollbackTo({ ...o, to: a.to as number, showCommands: a["show-commands"] as boolean })
                : (await commands()).cmdRollback(o),
        false,
      ),
    )
    .command(
      "confirm",
      "keep an apply made with --confirm-timeout (cancels its automatic rollback)",
      (y) => y,
      run(async (o) => (await confirmCmds()).cmdConfirm(o), false),
    )
    .command(
      "history",
      "applied revisions: who, when, what, status",
      (y) => y.option("all", { type: "boolean", describe: "also every event, failures included" }),
      run(async (o, a) => (await import("./cmd-history.js")).cmdHistory({ ...o, all: a.all as boolean }), false),
    )
    .command(
      "state <action>",
      "`state export`: the owned live state as JSON, for `plan --state FILE` elsewhere",
      (y) => files(y).positional("action", { choices: ["export"] }),
      run(async (o) => (await import("./cmd-state.js")).cmdStateExport(o), false),
    )
    .command(
      "graph",
      "draw the desired-state graph (resources and dependencies; offline), or with --live the topology read from the kernel",
      (y) =>
        files(y)
          .option("format", { type: "string", choices: ["dot", "mermaid", "svg"], default: "dot" })
          .option("state", { type: "string", describe: "an exported state to plan addresses against" })
          .option("live", { type: "boolean", describe: "draw what the kernel has (bridges, endpoints, namespaces, peers, routes, state, traffic)" })
          .option("rates", { type: "boolean", describe: "with --live: sample twice, a second apart, and show rates" }),
      run(
        async (o, a) =>
          (await import("./cmd-graph.js")).cmdGraph({
            ...o,
            format: a.format as string,
            stateFile: a.state as string | undefined,
            live: a.live as boolean,
            rates: a.rates as boolean,
          }),
        false,
      ),
    )
    .command(
      "watch",
      "keep the kernel converged: re-apply on config changes, kernel changes and every --resync",
      (y) =>
        files(y)
          .option("resync", { type: "string", default: "30s", describe: "full resync interval (drift repair even without events)" })
          .option("debounce", { type: "string", default: "300ms", describe: "quiet time after a burst of events before a pass" })
          .option("metrics-listen", { type: "string", describe: "HOST:PORT for /metrics and /healthz (overrides [monitoring] listen)" })
          .option("allow-destroy", { type: "boolean", describe: "apply a config change even if it deletes most of what bolt owns" })
          .option("api-socket", { type: "string", describe: "unix socket of the local API (default: $BOLT_API_SOCKET, else /run/bolt/TARGET.sock)" }),
      run(async (o, a) => {
        const { cmdWatch } = await import("./cmd-watch.js");
        const explicitLevel = argv.some((x) => x === "--log-level" || x.startsWith("--log-level=")) || process.env.BOLT_LOG_LEVEL !== undefined;
        const log = explicitLevel ? o.log : await makeLogger("info", a.json as boolean | undefined);
        return cmdWatch({
          ...o,
          log,
          resyncMs: parseDuration(a.resync as string, "--resync"),
          debounceMs: parseDuration(a.debounce as string, "--debounce"),
          metricsListen: a["metrics-listen"] as string | undefined,
          allowDestroy: a["allow-destroy"] as boolean,
          apiSocket: a["api-socket"] as string | undefined,
        });
      }),
    )
    .command(
      "daemon",
      "serve the local API (docs/api.md) for a target without a config to watch: plan, apply and show with absolute -f paths run in this warm process",
      (y) =>
        y
          .option("allow-destroy", { type: "boolean", describe: "API applies may delete most of what bolt owns" })
          .option("api-socket", { type: "string", describe: "unix socket of the local API (default: $BOLT_API_SOCKET, else /run/bolt/TARGET.sock)" }),
      run(async (o, a) => {
        const { cmdDaemon } = await import("./cmd-watch.js");
        const explicitLevel = argv.some((x) => x === "--log-level" || x.startsWith("--log-level=")) || process.env.BOLT_LOG_LEVEL !== undefined;
        const log = explicitLevel ? o.log : await makeLogger("info", a.json as boolean | undefined);
        return cmdDaemon({ ...o, log, apiSocket: a["api-socket"] as string | undefined, allowDestroy: a["allow-destroy"] as boolean });
      }, false),
    )
    .command(
      "mesh <action> [name]",
      "mesh tools: `mesh status` (peers, handshakes, transfer, routes from wg show dump), `mesh test` (the file's [[acl_tests]], offline); on an etcd store: `mesh init`, `enroll NAME`, `approve NAME`, `revoke NAME`, `expire NAME`, `remove NAME`, `list`, `policy set -f FILE | get`",
      (y) =>
        files(y)
          .positional("action", { choices: ["status", "test", "init", "enroll", "approve", "revoke", "expire", "remove", "list", "policy"] })
          .positional("name", { type: "string", describe: "the node (enroll, approve, revoke, expire, remove); policy: set (-f FILE) or get" })
          .option("control-server", { type: "string", describe: "the mesh's store: etcd://HOST:PORT[,HOST:PORT…] (env BOLT_CONTROL_SERVER)" })
          .option("mesh", { type: "string", describe: "the mesh's name in the store (env BOLT_MESH; default: default)" })
          .option("cidr", { type: "string", describe: "init: the mesh's IPv4 prefix (default 100.64.0.0/10)" })
          .option("status-ttl", { type: "number", describe: "init: seconds a node counts as online after its last status keepalive (default 30)" })
          .option("tags", { type: "string", array: true, describe: "enroll: the node's tags (comma-separated or repeated)" })
          .option("routes", { type: "string", array: true, describe: "enroll, approve: subnet routes it may announce (approved for it)" })
          .option("exit-node", { type: "boolean", describe: "enroll, approve: it may be an exit node" })
          .option("auto-approve", { type: "boolean", describe: "enroll: approved at once; the node's own key is taken" })
          .option("expires", { type: "string", describe: "enroll/expire: valid for this long (e.g. 180d); expire without it: now" })
          .option("release", { type: "boolean", describe: "remove: also free its address" })
          .option("public-key", { type: "string", describe: "approve: pin this WireGuard public key" })
          .option("ca", { type: "string", describe: "TLS: the CA of the store's server certificate, PEM (env BOLT_ETCD_CA); with --cert and --key" })
          .option("cert", { type: "string", describe: "TLS: the admin's client certificate, PEM; its CN is the etcd user (env BOLT_ETCD_CERT)" })
          .option("key", { type: "string", describe: "TLS: the admin's client key, PEM, mode 0600 (env BOLT_ETCD_KEY)" })
          .option("ca-key", { type: "string", describe: "enroll with TLS: the CA's private key, signs the node's client certificate (env BOLT_ETCD_CA_KEY)" })
          .option("out", { type: "string", describe: "enroll: write the bundle to this new file, mode 0600 (it holds the node's TLS key)" }),
      run(async (o, a) => {
        if (a.action === "test") return (await meshCmds()).cmdMeshTest(o);
        if (a.action === "status") return (await meshCmds()).cmdMeshStatus(o);
        const store = {
          controlServer: a["control-server"] as string | undefined,
          mesh: a.mesh as string | undefined,
          ca: a.ca as string | undefined,
          cert: a.cert as string | undefined,
          key: a.key as string | undefined,
          caKey: a["ca-key"] as string | undefined,
        };
        const { cmdMeshAdmin, cmdMeshPolicy } = await import("./cmd-mesh-admin.js");
        if (a.action === "policy") return cmdMeshPolicy({ ...o, ...store, action: "policy", name: a.name as string | undefined, policyFile: o.file[0] });
        return cmdMeshAdmin({
          ...o,
          ...store,
          action: String(a.action),
          name: a.name as string | undefined,
          controlServer: a["control-server"] as string | undefined,
          mesh: a.mesh as string | undefined,
          cidr: a.cidr as string | undefined,
          statusTtl: a["status-ttl"] as number | undefined,
          tags: a.tags as string[] | undefined,
          routes: a.routes as string[] | undefined,
          exitNode: a["exit-node"] as boolean | undefined,
          autoApprove: a["auto-approve"] as boolean | undefined,
          expires: a.expires as string | undefined,
          release: a.release as boolean | undefined,
          publicKey: a["public-key"] as string | undefined,
          outFile: a.out as string | undefined,
        });
      }, false),
    )
    .command(
      "network <action> [name] [endpoint]",
      "networks as one small file each in a config directory, then applied: `network create NAME --subnet CIDR`, `network ls`, `network rm NAME`, `network connect NAME ENDPOINT [--ip IP]`, `network disconnect NAME ENDPOINT`",
      (y) =>
        files(y)
          .positional("action", { choices: ["create", "ls", "rm", "connect", "disconnect"] })
          .positional("name", { type: "string", describe: "the network" })
          .positional("endpoint", { type: "string", describe: "connect/disconnect: the endpoint (its namespace's name)" })
          .option("dir", {
            type: "string",
            default: process.env.BOLT_CONFIG_DIR ?? "/etc/bolt/bolt.d",
            describe: "the config directory the verbs write into (read like `-f DIR`: its files merged in name order)",
          })
          .option("subnet", { type: "string", describe: "create: the network's IPv4 subnet" })
          .option("gateway", { type: "string", describe: "create: the gateway (default: the first address)" })
          .option("internet", { type: "boolean", describe: "create: NAT out of the host (default true)" })
          .option("isolated", { type: "boolean", describe: "create: no forwarding to other bolt networks (default true)" })
          .option("ip", { type: "string", describe: "connect: a static address (default: leased from the pool)" })
          .option("apply", { type: "boolean", default: true, describe: "apply the directory after the change (--no-apply: write and validate only)" }),
      run(async (o, a) => {
        const { cmdNetwork } = await import("./cmd-network.js");
        return cmdNetwork({
          ...o,
          action: a.action as "create",
          name: a.name as string | undefined,
          endpoint: a.endpoint as string | undefined,
          dir: String(a.dir),
          subnet: a.subnet as string | undefined,
          gateway: a.gateway as string | undefined,
          internet: a.internet as boolean | undefined,
          isolated: a.isolated as boolean | undefined,
          ip: a.ip as string | undefined,
          apply: a.apply as boolean,
        });
      }, false),
    )
    .command(
      "keygen <path>",
      "write a WireGuard key pair: PATH (0600) and PATH.pub",
      (y) => y.positional("path", { type: "string" }).option("force", { type: "boolean" }),
      run(async (o, a) => (await meshCmds()).cmdKeygen({ ...o, path: String(a.path), force: a.force as boolean }), false),
    )
    .command(
      "firewall <action>",
      "firewall tools: `firewall analyze` reports other firewalls (Docker, iptables, nft tables) that would break bolt's traffic, read-only",
      (y) => files(y).positional("action", { choices: ["analyze"] }),
      run(async (o) => (await commands()).cmdFirewallAnalyze(o), false),
    )
    .demandCommand(1, "name a command: validate, plan, apply, destroy, show, rollback, confirm, history, state export, graph, watch, firewall analyze")
    .strict()
    .command("version", "print bolt's version", {}, () => {
      out(`${version}\n`);
    })
    .help()
    .version("version", "print bolt's version", version)
    // bolt's messages are English; the bundle has no yargs locale files, and a generated
    // `--help` (dist/cli/help.txt, served by bin/bolt.js) must not depend on LANG.
    .detectLocale(false)
    .wrap(null)
    .exitProcess(false)
    .fail((msg, e) => {
      throw e ?? new BoltError(msg);
    });
  // yargs renders and caches the full help text whenever a command runs (~50 ms of a no-op
  // plan); bolt's fail handler never prints help after a command started, so skip it.
  const usage = (parser as unknown as { getInternalMethods?: () => { getUsageInstance: () => { cacheHelpMessage?: () => void } } })
    .getInternalMethods?.()
    .getUsageInstance();
  if (usage?.cacheHelpMessage) usage.cacheHelpMessage = () => {};
  try {
    await parser.parseAsync();
    return code;
  } catch (e) {
    return report(e);
  }
}

function report(e: unknown): number {
  if (e instanceof BoltError) {
    const lines = e.diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic);
    err((lines.length ? lines.join("\n") : `error: ${e.message}`) + "\n");
    return e.exitCode;
  }
  // The environment, not bolt: a file or directory that is missing, unwritable or full.
  const env = environmentFault(e);
  if (env) {
    err(`error: ${env}\n`);
    return EXIT.ERROR;
  }
  err(`error: internal: ${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT.ERROR;
}

const ERRNO: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on device",
  EROFS: "read-only file system",
  EEXIST: "already exists",
  ENOTDIR: "a path component is not a directory",
  EISDIR: "is a directory",
  EMFILE: "too many open files",
  EDQUOT: "disk quota exceeded",
};

/** One line for an operating-system error (errno code with a syscall or path), or a SQLite one. */
function environmentFault(e: unknown): string | undefined {
  const x = e as { code?: unknown; syscall?: unknown; path?: unknown; message?: unknown; name?: unknown };
  if (typeof x?.code !== "string") return undefined;
  if (x.name === "SqliteError") return `state store: ${String(x.message)} (${x.code})`;
  if (!/^E[A-Z]+$/.test(x.code) || (x.syscall === undefined && x.path === undefined)) return undefined;
  const what = ERRNO[x.code] ?? x.code;
  return `cannot ${typeof x.syscall === "string" ? x.syscall : "use"}${typeof x.path === "string" ? ` ${x.path}` : ""}: ${what}`;
}
