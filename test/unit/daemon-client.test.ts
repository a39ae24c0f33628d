// When the CLI goes through a daemon and when it does the work itself, against a fake API on a
// unix socket: only a daemon serving the same target, files (spelled the same), netns prefix
// and state dir is used; `bolt daemon` only for absolute files; --no-daemon, a stale socket
// and a test's injected runner mean local; an apply of other files than a `bolt watch` keeps
// converged is refused; what the daemon printed is printed as is, with its exit code.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { BoltError } from "../../src/core/diagnostics.js";
import { viaDaemon } from "../../src/daemon/client.js";
import type { RouteOpts } from "../../src/daemon/client.js";

const dir = mkdtempSync(join(tmpdir(), "bolt-client-unit-"));
const socket = join(dir, "t1.sock");
const stateDir = join(dir, "state");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let server: Server | undefined;
let calls: { method: string; url: string; body: Record<string, unknown> }[] = [];

function serve(daemon: Record<string, unknown>): Promise<void> {
  calls = [];
  server = createServer((req, res) => {
    let text = "";
    req.on("data", (d) => (text += d));
    req.on("end", () => {
      calls.push({ method: req.method!, url: req.url!, body: text ? JSON.parse(text) : {} });
      const body = req.url === "/v1/health" ? { api: "v1", daemon } : { exit_code: 2, stdout: "the plan\n", stderr: "a warning\n" };
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    });
  });
  return new Promise((r) => server!.listen(socket, () => r()));
}

const watchDaemon = (files: string[], extra: Record<string, unknown> = {}) => ({
  target: "t1",
  files,
  files_resolved: files.map((f) => resolve(f)),
  netns_prefix: "p-",
  state_dir: resolve(stateDir),
  pid: 4242,
  mode: "watch",
  ...extra,
});

function opts(over: Partial<RouteOpts> = {}): RouteOpts & { printed: { out: string; err: string } } {
  const printed = { out: "", err: "" };
  return {
    file: ["/etc/bolt/a.toml"],
    netns: "t1",
    stateDir,
    netnsPrefix: "p-",
    out: (s) => void (printed.out += s),
    err: (s) => void (printed.err += s),
    printed,
    ...over,
  };
}

describe("viaDaemon", () => {
  beforeEach(() => {
    process.env.BOLT_API_SOCKET = socket;
  });
  afterEach(async () => {
    delete process.env.BOLT_API_SOCKET;
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  it("goes through a daemon serving the same target, files, prefix and state dir, printing what it printed", async () => {
    await serve(watchDaemon(["/etc/bolt/a.toml"]));
    const o = opts();
    expect(await viaDaemon(o, "plan", { detailed_exitcode: true })).toBe(2);
    expect(o.printed).toEqual({ out: "the plan\n", err: "a warning\n" });
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual(["GET /v1/health", "POST /v1/plan"]);
    expect(calls[1]!.body).toEqual({ detailed_exitcode: true, cli: true });
  });

  it("does the work itself for other files, another spelling, prefix or state dir, --no-daemon, an injected runner", async () => {
    await serve(watchDaemon(["/etc/bolt/a.toml"]));
    expect(await viaDaemon(opts({ file: ["/etc/bolt/b.toml"] }), "plan", {})).toBeUndefined();
    expect(await viaDaemon(opts({ file: ["/etc/bolt/../bolt/a.toml"] }), "plan", {})).toBeUndefined();
    expect(await viaDaemon(opts({ netnsPrefix: undefined }), "plan", {})).toBeUndefined();
    expect(await viaDaemon(opts({ stateDir: join(dir, "other") }), "plan", {})).toBeUndefined();
    expect(await viaDaemon(opts({ netns: "t2" }), "plan", {})).toBeUndefined();
    expect(await viaDaemon(opts({ daemon: false }), "plan", {})).toBeUndefined();
    expect(await viaDaemon(opts({ runner: {} }), "plan", {})).toBeUndefined();
    expect(calls.filter((c) => c.url !== "/v1/health")).toEqual([]);
  });

  it("refuses an apply of other files than the daemon keeps converged, naming its pid; show goes with any files", async () => {
    await serve(watchDaemon(["/etc/bolt/a.toml"]));
    await expect(viaDaemon(opts({ file: ["/etc/bolt/b.toml"] }), "apply", {})).rejects.toThrow(/bolt watch \(pid 4242\).*--no-daemon/);
    await expect(viaDaemon(opts({ file: ["/etc/bolt/b.toml"] }), "apply", {})).rejects.toBeInstanceOf(BoltError);
    expect(await viaDaemon(opts({ file: [] }), "show", {})).toBe(2);
  });

  it("`bolt daemon` takes absolute files, sent with the request; relative ones are planned here", async () => {
    await serve(watchDaemon([], { mode: "daemon" }));
    expect(await viaDaemon(opts({ file: ["/srv/jobs.toml"] }), "apply", { json: true })).toBe(2);
    expect(calls.at(-1)!.body).toEqual({ json: true, files: ["/srv/jobs.toml"], cli: true });
    expect(await viaDaemon(opts({ file: ["jobs.toml"] }), "plan", {})).toBeUndefined();
  });

  it("no socket, or one nobody answers on (a daemon killed with -9): local", async () => {
    expect(await viaDaemon(opts(), "plan", {})).toBeUndefined();
    writeFileSync(socket, "");
    expect(await viaDaemon(opts(), "plan", {})).toBeUndefined();
    rmSync(socket);
  });
});
