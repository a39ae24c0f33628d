import { chmodSync, existsSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { dirname, isAbsolute } from "node:path";
import type { Logger } from "pino";
import { BoltError, ConfigError, formatDiagnostic } from "../core/diagnostics.js";
import type { Diagnostic } from "../core/diagnostics.js";
import type { CommandRunner, Ns } from "../exec/runner.js";
import { ReadCacheRunner } from "../exec/read-cache-runner.js";
import { PlanMemo } from "../core/plan-memo.js";
import type { StateStore } from "../state/store.js";
import { cmdApply, cmdPlan, cmdShow } from "../cli/commands.js";
import type { GlobalOpts } from "../cli/commands.js";
import { sampleStats } from "../cli/cmd-stats.js";
import { withRates } from "../core/stats.js";
import type { Stats } from "../core/stats.js";
import { parseIp4 } from "../core/ipv4.js";
import { parseIp6 } from "../core/ipv6.js";
import { identityOf } from "./client.js";
import { RUNTIME_FILE, defined as definedIn } from "./runtime-endpoints.js";
import type { CachedLoader, RuntimeEndpoint, RuntimeEndpointStore } from "./runtime-endpoints.js";
import { API_VERSION, apiRequest } from "./socket.js";

/** What the API needs of the process serving it: `bolt watch`'s controller, or `bolt daemon`'s queue. */
export interface ApiController {
  /** runs a write with no other write (or pass) beside it */
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** the intent or the kernel changed through the API */
  enqueue(trigger: "api", opts?: { config?: boolean }): void;
  health(): { healthy: boolean; body: unknown };
}

export interface ApiContext {
  /**
   * watch: the daemon keeps `files` converged and plans only them; daemon: it watches none,
   * each plan or apply names its (absolute) files, and attach uses those of the last apply.
   */
  mode: "watch" | "daemon";
  target: Ns;
  files: string[];
  netnsPrefix?: string;
  stateDir: string;
  lockTimeout: number;
  allowDestroy?: boolean;
  log: Logger;
  /** the daemon's runner (warm: no process of its own per request) */
  runner: CommandRunner;
  controller: ApiController;
  store: StateStore;
  runtime: RuntimeEndpointStore;
  cache: CachedLoader;
  /** watch: the memo of the controller's last no-op pass (its hits are in /v1/stats) */
  passMemo?: PlanMemo;
}

/** What a request's CLI-equivalent run printed, and its exit code: the CLI prints these as they are. */
interface Captured {
  exit_code: number;
  stdout: string;
  stderr: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const MAX_BODY = 64 * 1024;
const ENDPOINT_KEYS = new Set(["name", "network", "ip", "ip6", "netns", "ifname", "default"]);

/**
 * The daemon's local API: HTTP/JSON on a unix socket, versioned paths (/v1/…), documented in
 * docs/api.md. plan, apply and show run the CLI's own functions in this warm process with
 * their output captured, so the CLI going through the socket prints the same bytes.
 *
 * Who may call: Node exposes no SO_PEERCRED, so the peer's uid cannot be checked here. The
 * guard is the file system, which the kernel enforces at connect(2): the socket is created
 * mode 0600 (umask 0177 around bind, then chmod) owned by root, in a directory created 0700.
 * A non-root caller gets EACCES before any byte reaches this server.
 */
export class ApiServer {
  private readonly server: Server;
  private path: string | undefined;
  private ino: number | undefined;
  private readonly requests = new Map<string, { count: number; errors: number; total_ms: number; last_ms: number }>();
  private readonly startedAt = Date.now();
  /** the previous traffic sample of /v1/stats: the next answer carries rates since it */
  private lastSample: Stats | undefined;
  /** daemon mode: the files of the last successful apply through the API (attach plans with them) */
  private lastFiles: string[] = [];
  /** the last no-op plan, given back while nothing it read changed (core/plan-memo.ts) */
  private readonly memo: PlanMemo | undefined;

  constructor(private readonly c: ApiContext) {
    this.memo = c.runner instanceof ReadCacheRunner ? new PlanMemo(c.runner, c.target) : undefined;
    this.server = createServer((req, res) => void this.handle(req, res));
    // A keep-alive client left open must not hold a stopping daemon.
    this.server.keepAliveTimeout = 5000;
  }

  /** Listens on `path`, refusing to steal it from a daemon that still answers there. */
  async listen(path: string): Promise<void> {
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o077)
      this.c.log.warn({ dir, mode: mode.toString(8) }, "the API socket's directory is open to other users; the socket itself is 0600 (root only)");
    if (existsSync(path)) {
      const alive = await apiRequest(path, "GET", `/${API_VERSION}/health`, undefined, 2000).then(
        (r) => r.body,
        () => undefined,
      );
      if (alive) {
        const pid = (alive.daemon as { pid?: number } | undefined)?.pid;
        throw new BoltError(`another bolt daemon (pid ${pid ?? "?"}) serves this target on ${path}; stop it first, or give --api-socket another path`);
      }
      // Left by a daemon that died (kill -9): nobody answers, so it is ours to replace.
      unlinkSync(path);
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      // bind(2) happens inside listen() synchronously: the socket is born 0600, never briefly open.
      const umask = process.umask(0o177);
      try {
        this.server.listen(path, () => {
          this.server.off("error", reject);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
    chmodSync(path, 0o600);
    this.path = path;
    this.ino = statSync(path).ino;
  }

  async close(): Promise<void> {
    if (!this.path) return;
    const path = this.path;
    this.path = undefined;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeIdleConnections();
    await closed;
    try {
      // Only our own socket: a successor may already have replaced it.
      if (statSync(path).ino === this.ino) unlinkSync(path);
    } catch {
      /* already gone */
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const url = new URL(req.url ?? "/", "http://bolt");
    const route = `${req.method} ${url.pathname.replace(/^(\/v1\/endpoints\/).+$/, "$1:name")}`;
    let status = 200;
    let body: unknown;
    try {
      const input = req.method === "POST" ? await readJson(req) : {};
      ({ status, body } = await this.route(req.method ?? "GET", url, input));
    } catch (e) {
      if (e instanceof HttpError) {
        status = e.status;
        body = { error: e.message, ...e.extra };
      } else {
        status = 500;
        body = { error: e instanceof BoltError ? e.message : ((e as Error)?.stack ?? String(e)) };
        this.c.log.error({ route, error: (e as Error)?.stack ?? String(e) }, "api request failed");
      }
    }
    const ms = performance.now() - t0;
    const s = this.requests.get(route) ?? { count: 0, errors: 0, total_ms: 0, last_ms: 0 };
    s.count++;
    if (status >= 400) s.errors++;
    s.total_ms += ms;
    s.last_ms = Math.round(ms * 10) / 10;
    this.requests.set(route, s);
    this.c.log.debug({ route, status, ms: Math.round(ms * 10) / 10 }, "api");
    const text = JSON.stringify(body, null, 2) + "\n";
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  private async route(method: string, url: URL, input: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    const parts = url.pathname.split("/").filter(Boolean);
    if (parts[0] !== API_VERSION) throw new HttpError(404, `no such path ${url.pathname}: the API is versioned (/${API_VERSION}/…); see docs/api.md`);
    const path = parts.slice(1).join("/");
    const q = (k: string) => url.searchParams.get(k) === "1" || url.searchParams.get(k) === "true";
    const allow = (...m: string[]) => {
      if (!m.includes(method)) throw new HttpError(405, `${method} /${API_VERSION}/${path}: use ${m.join(" or ")}`);
    };
    switch (path) {
      case "health": {
        allow("GET");
        const h = this.c.controller.health();
        return { status: h.healthy ? 200 : 503, body: { api: API_VERSION, daemon: this.identity(), ...(h.body as object) } };
      }
      case "stats":
        allow("GET");
        return { status: 200, body: await this.stats(q("rtt"), url.searchParams.get("traffic") !== "0") };
      case "plan":
        allow("GET", "POST");
        return { status: 200, body: await this.plan({ ...input, json: input.json ?? q("json"), deep: input.deep ?? q("deep") }) };
      case "apply":
        allow("POST");
        return { status: 200, body: await this.apply(input) };
      case "show":
        allow("GET", "POST");
        return { status: 200, body: await this.show({ ...input, config_files_optional: true, json: input.json ?? q("json"), deep: input.deep ?? q("deep") }) };
      case "endpoints":
        allow("GET", "POST");
        return method === "GET" ? { status: 200, body: { endpoints: this.listEndpoints() } } : await this.attach(input);
    }
    if (parts[1] === "endpoints" && parts.length === 3) {
      allow("DELETE", "GET");
      const name = decodeURIComponent(parts[2]!);
      if (method === "GET") {
        const e = this.listEndpoints().find((x) => x.name === name);
        if (!e) throw new HttpError(404, `no runtime endpoint "${name}"`);
        return { status: 200, body: e };
      }
      return await this.detach(name);
    }
    throw new HttpError(404, `no such path ${url.pathname}; see docs/api.md`);
  }

  private identity() {
    return { ...identityOf(this.c.target, this.configFiles(), this.c.netnsPrefix, this.c.stateDir), pid: process.pid, mode: this.c.mode };
  }

  /** The files attach, detach and the identity use: the watched ones, or the last applied ones. */
  private configFiles(): string[] {
    return this.c.mode === "watch" ? [...this.c.files] : [...this.lastFiles];
  }

  /** The files a plan or apply request is about. */
  private requestFiles(input: Record<string, unknown>): string[] {
    if (this.c.mode === "watch") return [...this.c.files];
    const f = input.files;
    if (f === undefined && input.config_files_optional === true) return this.configFiles();
    if (!Array.isArray(f) || !f.every((x) => typeof x === "string" && isAbsolute(x)))
      throw new HttpError(400, '"files": the absolute paths of the config files (`bolt daemon` watches none; each plan and apply names its own)');
    return f as string[];
  }

  /** The options a CLI run would have, for this daemon's target and files; its output captured. */
  private opts(input: Record<string, unknown>, cap: Captured): GlobalOpts {
    return {
      file: this.requestFiles(input),
      netns: this.c.target ?? undefined,
      stateDir: this.c.stateDir,
      netnsPrefix: this.c.netnsPrefix,
      lockTimeout: this.c.lockTimeout,
      json: input.json === true,
      log: this.c.log,
      runner: this.c.runner,
      out: (s) => void (cap.stdout += s),
      err: (s) => void (cap.stderr += s),
      // This process is the daemon: never call itself.
      daemon: false,
      loadConfig: this.c.cache.loader,
      planMemo: this.memo,
      color: input.color === true,
    };
  }

  /** Runs a CLI command here; its errors become what the CLI would print for them, with its exit code. */
  private async capture(input: Record<string, unknown>, fn: (o: GlobalOpts) => Promise<number>): Promise<Captured> {
    const cap: Captured = { exit_code: 0, stdout: "", stderr: "" };
    try {
      cap.exit_code = await fn(this.opts(input, cap));
    } catch (e) {
      if (!(e instanceof BoltError)) throw e;
      const lines = e.diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic);
      cap.stderr += `${lines.length ? lines.join("\n") : `error: ${e.message}`}\n`;
      cap.exit_code = e.exitCode;
    }
    return cap;
  }

  private async plan(input: Record<string, unknown>) {
    const cap = await this.capture(input, (o) =>
      cmdPlan({ ...o, deep: input.deep === true, showCommands: input.show_commands === true, detailedExitcode: input.detailed_exitcode === true }),
    );
    // For API callers: the plan as a value too (the same document `bolt plan --json` prints).
    return input.json === true && cap.exit_code !== 1 && input.cli !== true ? { ...cap, plan: JSON.parse(cap.stdout) as unknown } : cap;
  }

  private async apply(input: Record<string, unknown>) {
    return this.c.controller.runExclusive(async () => {
      const cap = await this.capture(input, (o) =>
        cmdApply({
          ...o,
          deep: input.deep === true,
          showCommands: input.show_commands === true,
          allowDestroy: input.allow_destroy === true || this.c.allowDestroy,
        }),
      );
      // The kernel changed under the controller's feet, maybe with files it has not re-read yet.
      this.c.controller.enqueue("api", { config: true });
      if (cap.exit_code === 0 && this.c.mode === "daemon") this.lastFiles = this.requestFiles(input);
      return cap;
    });
  }

  private async show(input: Record<string, unknown>) {
    const cap = await this.capture(input, (o) => cmdShow({ ...o, deep: input.deep === true }));
    return input.json === true && cap.exit_code === 0 && input.cli !== true ? { ...cap, show: JSON.parse(cap.stdout) as unknown } : cap;
  }

  /** The daemon's own figures, and the `bolt stats --json` sample (with per-second rates since the previous request). */
  private async stats(rtt: boolean, traffic: boolean) {
    const h = this.c.controller.health().body as Record<string, unknown>;
    let sample: Stats | undefined;
    let shown: Stats | undefined;
    if (traffic) {
      sample = await sampleStats(this.c.runner, this.c.target, this.c.store.originals(this.c.target), rtt);
      shown = this.lastSample ? withRates(this.lastSample, sample) : sample;
      this.lastSample = sample;
    }
    const mem = process.memoryUsage();
    return {
      api: API_VERSION,
      daemon: this.identity(),
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      passes: h.passes,
      last_pass: h.last_pass,
      last_success_at: h.last_success_at,
      runtime_endpoints: this.c.runtime.list(this.c.target).length,
      requests: Object.fromEntries(
        [...this.requests].map(([k, v]) => [
          k,
          { count: v.count, errors: v.errors, mean_ms: Math.round((v.total_ms / v.count) * 10) / 10, last_ms: v.last_ms },
        ]),
      ),
      memory: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed },
      ...(this.c.runner instanceof ReadCacheRunner
        ? {
            read_cache: { hits: this.c.runner.hits, misses: this.c.runner.misses },
            plan_memo: { hits: this.memo?.hits ?? 0, misses: this.memo?.misses ?? 0 },
            ...(this.c.passMemo ? { pass_memo: { hits: this.c.passMemo.hits, misses: this.c.passMemo.misses } } : {}),
          }
        : {}),
      ...(shown ? { traffic: shown } : {}),
    };
  }

  private listEndpoints() {
    const leases = this.c.store.leases(this.c.target);
    return this.c.runtime.list(this.c.target).map((e) => ({
      ...e,
      leased: { ip: leases.get(e.name) ?? null, ip6: leases.get(`${e.name}/6`) ?? null },
    }));
  }

  /** Endpoint and network names the config files define, from their parsed data (an unreadable file defines none). */
  private defined(): ReturnType<typeof definedIn> {
    return definedIn(
      this.configFiles().flatMap((f) => {
        try {
          return [this.c.cache.parsed.load(f).lf];
        } catch {
          return [];
        }
      }),
    );
  }

  /**
   * POST /v1/endpoints: the endpoint joins the daemon's intent as a runtime endpoint, recorded in
   * the state store first (a crash mid-apply leaves the record and the journal: the next start
   * rolls the half-apply back, then converges, endpoint included), and is applied at once.
   */
  private async attach(input: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    const ep = endpointOf(input);
    const t = this.c.target;
    return this.c.controller.runExclusive(async () => {
      if (!this.configFiles().length)
        throw new HttpError(
          409,
          "this daemon has no configuration yet: apply one through it first (`bolt apply -f /abs/path.toml`), its networks are what endpoints attach to",
        );
      const have = this.defined();
      const file = have.endpoints.get(ep.name);
      if (file !== undefined) throw new HttpError(409, `endpoint "${ep.name}" is defined in ${file}; a runtime endpoint needs a name no config file uses`);
      if (this.c.runtime.list(t).some((e) => e.name === ep.name))
        throw new HttpError(409, `runtime endpoint "${ep.name}" is already attached; detach it first`);
      if (!have.networks.has(ep.network))
        throw new HttpError(422, `network "${ep.network}" is in no config file (${this.configFiles().join(", ")})`, { networks: [...have.networks] });
      // A static address another endpoint holds by lease would be taken from it (statics win and
      // the leased one is renumbered): an attach must not move a running endpoint.
      const holder = this.leaseHolder(ep);
      if (holder) throw new HttpError(409, `${holder.address} is leased to endpoint "${holder.endpoint}"; choose another address or let bolt lease one`);
      this.c.runtime.add(t, ep);
      this.c.cache.invalidate();
      // Its own problems (a bad address, one the files use, a namespace taken) are the caller's: 422.
      const own = this.ownProblems();
      if (own.length) {
        this.forget(ep.name);
        throw new HttpError(422, own.map(formatDiagnostic).join("\n"), { diagnostics: own });
      }
      let cap: Captured;
      try {
        cap = await this.capture({ json: true, files: this.configFiles() }, (o) => cmdApply({ ...o, allowDestroy: this.c.allowDestroy }));
      } catch (e) {
        this.forget(ep.name);
        throw e;
      }
      if (cap.exit_code !== 0) {
        // Refused (the config does not validate with it) or failed and rolled back: not attached.
        this.forget(ep.name);
        throw new HttpError(500, cap.stderr.trim() || "the apply failed", { exit_code: cap.exit_code });
      }
      this.c.controller.enqueue("api", { config: true });
      this.c.log.info({ endpoint: ep.name, network: ep.network }, "api: endpoint attached");
      const listed = this.listEndpoints().find((x) => x.name === ep.name);
      return { status: 201, body: { endpoint: listed, plan: JSON.parse(cap.stdout) as unknown } };
    });
  }

  /** DELETE /v1/endpoints/NAME: out of the intent and the store, and removed from the kernel. */
  private async detach(name: string): Promise<{ status: number; body: unknown }> {
    const t = this.c.target;
    return this.c.controller.runExclusive(async () => {
      const rec = this.c.runtime.list(t).find((e) => e.name === name);
      if (!rec) {
        const file = this.defined().endpoints.get(name);
        if (file !== undefined) throw new HttpError(409, `endpoint "${name}" is defined in ${file}, not attached through the API: remove it from the file`);
        throw new HttpError(404, `no runtime endpoint "${name}"`);
      }
      this.forget(name);
      let cap: Captured;
      try {
        cap = await this.capture({ json: true, files: this.configFiles() }, (o) => cmdApply({ ...o, allowDestroy: true }));
      } catch (e) {
        this.restore(rec);
        throw e;
      }
      if (cap.exit_code !== 0) {
        // Still in the kernel (the apply rolled back): still attached.
        this.restore(rec);
        throw new HttpError(500, cap.stderr.trim() || "the apply failed", { exit_code: cap.exit_code });
      }
      this.c.controller.enqueue("api", { config: true });
      this.c.log.info({ endpoint: name }, "api: endpoint detached");
      return { status: 200, body: { detached: rec, plan: JSON.parse(cap.stdout) as unknown } };
    });
  }

  private leaseHolder(ep: RuntimeEndpoint): { endpoint: string; address: string } | undefined {
    const want4 = ep.ip === undefined ? undefined : parseIp4(ep.ip);
    const want6 = ep.ip6 === undefined ? undefined : parseIp6(ep.ip6);
    for (const [key, ip] of this.c.store.leases(this.c.target)) {
      const v6 = key.endsWith("/6");
      const name = v6 ? key.slice(0, -2) : key;
      if (name === ep.name) continue;
      if (!v6 && want4 !== undefined && parseIp4(ip.split("/")[0]!) === want4) return { endpoint: name, address: ep.ip! };
      if (v6 && want6 !== undefined && parseIp6(ip.split("/")[0]!) === want6) return { endpoint: name, address: ep.ip6! };
    }
    return undefined;
  }

  /** Errors the config pipeline finds in the runtime endpoints (the files' own are the next pass's business). */
  private ownProblems(): Diagnostic[] {
    try {
      this.c.cache.load(this.configFiles(), this.c.netnsPrefix);
      return [];
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return e.diagnostics.filter((d) => d.severity === "error" && d.source?.file === RUNTIME_FILE);
    }
  }

  private forget(name: string): void {
    this.c.runtime.remove(this.c.target, name);
    this.c.cache.invalidate();
  }

  private restore(e: RuntimeEndpoint): void {
    this.c.runtime.add(this.c.target, e);
    this.c.cache.invalidate();
  }
}

/** The attach body, checked for shape here; everything else (addresses, names) the config pipeline checks. */
function endpointOf(input: Record<string, unknown>): RuntimeEndpoint {
  const unknown = Object.keys(input).filter((k) => !ENDPOINT_KEYS.has(k));
  if (unknown.length)
    throw new HttpError(400, `unknown field(s) ${unknown.join(", ")}: an endpoint has name, network and optionally ip, ip6, netns, ifname, default`);
  for (const k of ["name", "network"]) if (typeof input[k] !== "string" || !input[k]) throw new HttpError(400, `"${k}" is required (a string)`);
  for (const k of ["ip", "ip6", "netns", "ifname"])
    if (input[k] !== undefined && typeof input[k] !== "string") throw new HttpError(400, `"${k}" must be a string`);
  if (input.default !== undefined && typeof input.default !== "boolean") throw new HttpError(400, `"default" must be true or false`);
  const e: RuntimeEndpoint = { name: input.name as string, network: input.network as string };
  if (input.ip !== undefined) e.ip = input.ip as string;
  if (input.ip6 !== undefined) e.ip6 = input.ip6 as string;
  if (input.netns !== undefined) e.netns = input.netns as string;
  if (input.ifname !== undefined) e.ifname = input.ifname as string;
  if (input.default !== undefined) e.default = input.default as boolean;
  return e;
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => {
      text += d;
      if (text.length > MAX_BODY) {
        reject(new HttpError(413, `request body over ${MAX_BODY} bytes`));
        req.destroy();
      }
    });
    req.on("end", () => {
      if (!text.trim()) return resolve({});
      try {
        const v = JSON.parse(text) as unknown;
        if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
        resolve(v as Record<string, unknown>);
      } catch (e) {
        reject(new HttpError(400, `the body is not a JSON object: ${(e as Error).message}`));
      }
    });
    req.on("error", reject);
  });
}
