// Shared harness for the real-kernel integration tests: throwaway network namespaces named
// `bolt-t-<id>…`, a temp state dir, the built CLI run as a child process, kernel reads with
// `ip -j`, PATH-injected fake tools, and a teardown that removes every namespace of the run.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, execaSync } from "execa";
import type { ResultPromise } from "execa";
import { afterAll, beforeAll } from "vitest";
import { wgMountFile, wgSocketDir } from "../../src/exec/run-dir.js";
import { apiSocketPath } from "../../src/daemon/socket.js";
import { writeRunJournal, writeRunOriginals } from "../../src/state/run-copy.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BOLT_BIN = join(REPO, "bin", "bolt.js");
export const FAKES = join(REPO, "test", "integration", "fakes");

function hasIp(): boolean {
  try {
    return execaSync("ip", ["-V"], { reject: false }).exitCode === 0;
  } catch {
    return false;
  }
}

/** Why the suite cannot run here, or undefined. Network namespaces need root and iproute2. */
export const SKIP_REASON: string | undefined =
  process.getuid?.() !== 0
    ? "integration tests need root (they create network namespaces)"
    : !hasIp()
      ? "integration tests need `ip` (iproute2) on PATH"
      : undefined;
if (SKIP_REASON) console.warn(`[integration] SKIPPED: ${SKIP_REASON}`);

/** The suite runs the compiled CLI: a missing build is an error, never a silent skip. */
export function requireBuild(): void {
  // Whatever bin/bolt.js loads from dist/ must exist (the launcher names it).
  const target = /from\s+["'](\.\.\/dist\/[^"']+)["']/.exec(readFileSync(BOLT_BIN, "utf8"))?.[1] ?? "../dist/src/cli/main.js";
  if (!existsSync(join(REPO, "bin", target)))
    throw new Error(`${join("bin", target)} is missing: run \`npm run build\` (npm test does) before the integration tests`);
}

export interface RunOut {
  code: number;
  stdout: string;
  stderr: string;
}

export interface BoltOpts {
  env?: Record<string, string>;
  input?: string;
}

/** `node bin/bolt.js ARGS`; never throws on a non-zero exit. */
export async function bolt(args: string[], opts: BoltOpts = {}): Promise<RunOut> {
  const r = await execa("node", [BOLT_BIN, ...args], { cwd: REPO, env: opts.env, input: opts.input, reject: false });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function run(argv: string[], input?: string): Promise<RunOut> {
  const r = await execa(argv[0]!, argv.slice(1), { input, reject: false, env: { LC_ALL: "C" } });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Runs a command that must succeed (test setup), with its stderr in the failure. */
export async function must(argv: string[], input?: string): Promise<string> {
  const r = await run(argv, input);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export async function ipJson(ns: string, args: string[]): Promise<Json> {
  const out = await must(["ip", "-n", ns, "-j", ...args]);
  return out.trim() ? JSON.parse(out) : [];
}

export async function netnsList(): Promise<string[]> {
  const out = await must(["ip", "-j", "netns", "list"]);
  return out.trim() ? (JSON.parse(out) as { name: string }[]).map((n) => n.name) : [];
}

/** One ICMP echo from a namespace; a second try covers the first ARP resolution. */
export async function ping(fromNs: string, ip: string): Promise<boolean> {
  for (let i = 0; i < 2; i++) {
    const r = await run(["ip", "netns", "exec", fromNs, "ping", "-n", "-c", "1", "-W", "2", ip]);
    if (r.code === 0) return true;
  }
  return false;
}

/**
 * Whether a socket listens on PORT in NS (ss reads the namespace's socket table) within
 * `timeoutMs`: a client started before the server bound is refused. False at once when `gone()`
 * says the server ended.
 */
export async function listening(ns: string, port: number, o: { udp?: boolean; timeoutMs?: number; gone?: () => boolean } = {}): Promise<boolean> {
  const end = Date.now() + (o.timeoutMs ?? 10_000);
  while (!o.gone?.()) {
    const ss = await run(["ip", "netns", "exec", ns, "ss", o.udp ? "-Hlun" : "-Hltn", `sport = :${port}`]);
    if (ss.stdout.trim()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export async function sysctlGet(ns: string, key: string): Promise<string> {
  return (await must(["ip", "netns", "exec", ns, "sysctl", "-n", key])).trim();
}

// Fields the kernel changes on its own: indexes (a recreated peer gets a new one), carrier
// and operational state (set asynchronously by linkwatch), bridge/port timers, address lifetimes.
const VOLATILE = new Set(["ifindex", "link_index", "link_netnsid", "operstate", "stats", "stats64", "valid_life_time", "preferred_life_time"]);
const VOLATILE_FLAGS = new Set(["LOWER_UP", "NO-CARRIER", "M-DOWN"]);

function scrub(v: Json): Json {
  if (Array.isArray(v)) return v.map(scrub);
  if (v && typeof v === "object") {
    const out: Json = {};
    for (const k of Object.keys(v).sort()) {
      if (VOLATILE.has(k) || k.endsWith("_timer")) continue;
      out[k] = k === "flags" && Array.isArray(v[k]) ? v[k].filter((f: string) => !VOLATILE_FLAGS.has(f)) : scrub(v[k]);
    }
    return out;
  }
  return v;
}

const byJson = (a: Json, b: Json) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0);

export interface Snapshot {
  links: Json[];
  routes: Json[];
  rules: Json[];
  /** `nft -j list ruleset` without handles and counters; null when nft is not installed */
  nft: Json[] | null;
}

const HAS_NFT = (() => {
  try {
    return execaSync("nft", ["--version"], { reject: false }).exitCode === 0;
  } catch {
    return false;
  }
})();

// Handles are renumbered when a rule is re-added (rollback), counters count traffic.
const NFT_VOLATILE = new Set(["handle", "packets", "bytes"]);

function scrubNft(v: Json): Json {
  if (Array.isArray(v)) return v.map(scrubNft);
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => !NFT_VOLATILE.has(k))
        .map((k) => [k, scrubNft(v[k])]),
    );
  return v;
}

async function nftRuleset(ns: string): Promise<Json[] | null> {
  if (!HAS_NFT) return null;
  const out = await must(["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"]);
  const items = (out.trim() ? (JSON.parse(out) as Json).nftables : []) as Json[];
  return items
    .filter((i) => !i.metainfo)
    .map(scrubNft)
    .sort(byJson);
}

/**
 * A normalized dump of a namespace for before/after equality: every link with its details
 * and addresses, every IPv4 and IPv6 route of every table, the policy rules, the nftables
 * ruleset. Waits until no
 * IPv6 address is still in duplicate address detection ("tentative"): DAD finishing later
 * adds local routes and would make two dumps of an unchanged namespace differ.
 */
export async function snapshot(ns: string): Promise<Snapshot> {
  for (let i = 0; ; i++) {
    const [links, addrs, r4, r6, rules, nft] = await Promise.all([
      ipJson(ns, ["-d", "link", "show"]),
      ipJson(ns, ["addr", "show"]),
      ipJson(ns, ["-4", "route", "show", "table", "all"]),
      ipJson(ns, ["-6", "route", "show", "table", "all"]),
      ipJson(ns, ["rule", "show"]),
      nftRuleset(ns),
    ]);
    const tentative = (addrs as Json[]).some((a) => (a.addr_info ?? []).some((x: Json) => x.tentative));
    if (tentative && i < 50) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const addrBy = new Map((addrs as Json[]).map((a) => [a.ifname, [...(a.addr_info ?? [])].map(scrub).sort(byJson)]));
    return {
      links: (links as Json[]).map((l) => ({ ...scrub(l), addr_info: addrBy.get(l.ifname) ?? [] })).sort((a, b) => (a.ifname < b.ifname ? -1 : 1)),
      routes: [...(r4 as Json[]), ...(r6 as Json[])].map(scrub).sort(byJson),
      rules: (rules as Json[]).map(scrub).sort(byJson),
      nft,
    };
  }
}

/**
 * One test's world: a target namespace `bolt-t-<id>`, endpoint namespaces `bolt-t-<id>-NAME`
 * (via --netns-prefix), a temp dir for configs and fake tools, a temp state dir.
 */
export class Sandbox {
  readonly id = randomBytes(3).toString("hex");
  readonly target = `bolt-t-${this.id}`;
  readonly prefix = `${this.target}-`;
  private readonly children = new Set<ResultPromise>();
  private tmp?: { dir: string; state: string };

  // Made on first use: a skipped suite still constructs its sandbox but never cleans up.
  private get temp() {
    return (this.tmp ??= { dir: mkdtempSync(join(tmpdir(), "bolt-it-")), state: mkdtempSync(join(tmpdir(), "bolt-it-state-")) });
  }
  /** configs, fake tool dirs, signal files */
  get dir(): string {
    return this.temp.dir;
  }
  get stateDir(): string {
    return this.temp.state;
  }

  /** A run dir of this sandbox's own (BOLT_RUN_DIR), so the daemon's API socket is the test's: its env and the socket path. */
  privateRunDir(): { runDir: string; env: Record<string, string>; socket: string } {
    const runDir = join(this.dir, "run");
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    return { runDir, env: { BOLT_RUN_DIR: runDir }, socket: join(runDir, `${this.target}.sock`) };
  }

  /** Creates the target namespace (or `<target>-<suffix>`) for this test. */
  async addNetns(suffix?: string): Promise<string> {
    const name = suffix ? `${this.prefix}${suffix}` : this.target;
    await must(["ip", "netns", "add", name]);
    return name;
  }

  /** The namespace bolt creates for endpoint NAME. */
  ns(endpoint: string): string {
    return `${this.prefix}${endpoint}`;
  }

  write(name: string, text: string): string {
    const p = join(this.dir, name);
    writeFileSync(p, text);
    return p;
  }

  /** bolt with this sandbox's target, prefix and state dir appended. */
  bolt(args: string[], opts: BoltOpts & { lockTimeout?: number } = {}): Promise<RunOut> {
    return bolt([...args, ...this.common(opts.lockTimeout)], opts);
  }

  /** The same, started and not awaited (crash and lock tests), in its own process group. */
  spawnBolt(args: string[], opts: BoltOpts = {}): ResultPromise {
    const p = execa("node", [BOLT_BIN, ...args, ...this.common()], { cwd: REPO, env: opts.env, reject: false, detached: true });
    this.children.add(p);
    return p;
  }

  private common(lockTimeout?: number): string[] {
    return [
      "--netns",
      this.target,
      "--netns-prefix",
      this.prefix,
      "--state-dir",
      this.stateDir,
      ...(lockTimeout === undefined ? [] : ["--lock-timeout", String(lockTimeout)]),
    ];
  }

  /** What `plan --json` would do, as sorted "action address" lines (kinds added later included). */
  async planned(file: string): Promise<string[]> {
    const r = await this.bolt(["plan", "--json", "-f", file]);
    if (r.code !== 0) throw new Error(`plan --json failed (${r.code}): ${r.stderr}`);
    return plannedOf(r.stdout);
  }

  /** `plan --detailed-exitcode`: 0 means the kernel matches the config. */
  planExit(file: string, extra: string[] = []): Promise<RunOut> {
    return this.bolt(["plan", "-f", file, "--detailed-exitcode", ...extra]);
  }

  /** Env for a bolt whose PATH starts with a dir holding only the named fake tools. */
  fakeEnv(tools: ("ip" | "tc" | "sysctl" | "nft")[], vars: Record<string, string> = {}): Record<string, string> {
    const bin = mkdtempSync(join(this.dir, "fakebin-"));
    for (const t of tools) symlinkSync(join(FAKES, t), join(bin, t));
    return { PATH: `${bin}${delimiter}${process.env.PATH ?? ""}`, ...vars };
  }

  /** Our namespaces that exist right now (target and endpoint namespaces). */
  async mine(): Promise<string[]> {
    return (await netnsList()).filter((n) => n === this.target || n.startsWith(this.prefix)).sort();
  }

  /** Kills processes this sandbox started (their whole group), deletes its namespaces and temp dirs. */
  async cleanup(): Promise<void> {
    // A group outlives its leader: a killed bolt may leave a sleeping fake tool behind.
    for (const c of this.children) {
      if (c.pid !== undefined) {
        try {
          process.kill(-c.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    }
    for (const n of await this.mine()) {
      await releaseWgRuntime(n);
      await run(["ip", "netns", "del", n]);
    }
    // `ip netns del` leaves /etc/netns/NAME (the resolv.conf and hosts bolt wrote for a namespace
    // the test deleted by hand instead of through bolt destroy).
    for (const n of readdirSafe("/etc/netns"))
      if (n === this.target || n.startsWith(this.prefix)) rmSync(join("/etc/netns", n), { recursive: true, force: true });
    // What bolt keeps per target in the run dir (a killed apply's journal copy, sysctl originals, a killed daemon's socket).
    writeRunJournal(this.target, undefined);
    writeRunOriginals(this.target, new Map());
    rmSync(apiSocketPath(this.target), { force: true });
    if (this.tmp) for (const d of [this.tmp.dir, this.tmp.state]) rmSync(d, { recursive: true, force: true });
  }
}

/** Snapshots of the sandbox's target and of every namespace of it, by name. */
export async function world(sb: Sandbox): Promise<Record<string, Snapshot>> {
  const out: Record<string, Snapshot> = {};
  for (const n of await sb.mine()) out[n] = await snapshot(n);
  return out;
}

/**
 * Registers, in the calling describe, a sandbox with its target namespace and `config` as its
 * bolt-network.toml, and the world recorded before anything ran; cleaned up after.
 */
export function pristineSandbox(config: string): { sb: Sandbox; file: string; pristine: Record<string, Snapshot> } {
  const s = { sb: new Sandbox(), file: "", pristine: {} as Record<string, Snapshot> };
  beforeAll(async () => {
    requireBuild();
    await s.sb.addNetns();
    s.file = s.sb.write("bolt-network.toml", config);
    s.pristine = await world(s.sb);
  });
  afterAll(() => s.sb.cleanup());
  return s;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A fresh WireGuard key pair: the private key in FILE (0600, as bolt demands), both keys returned. */
export async function writeWgKey(file: string): Promise<{ priv: string; pub: string }> {
  const priv = (await execa("wg", ["genkey"])).stdout.trim();
  writeFileSync(file, `${priv}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { priv, pub: (await execa("wg", ["pubkey"], { input: priv })).stdout.trim() };
}

/** `wg ARGS` as bolt runs it for namespace NS: inside NS and NS's private /var/run/wireguard. */
export function wgIn(ns: string, args: string[]): string[] {
  return ["nsenter", `--net=/run/netns/${ns}`, `--mount=${wgMountFile(ns)}`, "--", "wg", ...args];
}

/** `wireguard-go IF` processes living in namespace NS (`ip netns pids`: by their network namespace). */
export async function wgPidsIn(ns: string, ifname: string): Promise<number[]> {
  const here = new Set((await run(["ip", "netns", "pids", ns])).stdout.split("\n").filter(Boolean).map(Number));
  const r = await run(["pgrep", "-f", `^wireguard-go ${ifname}$`]);
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((p) => here.has(p));
}

/**
 * Teardown of one of our namespaces' WireGuard: its wireguard-go processes (in our namespace,
 * so ours) killed by PID, its private /var/run/wireguard unmounted and removed.
 */
export async function releaseWgRuntime(ns: string): Promise<void> {
  const pids = (await run(["ip", "netns", "pids", ns])).stdout.split("\n").filter(Boolean).map(Number);
  for (const pid of pids) {
    const cmd = existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, "utf8") : "";
    if (!cmd.startsWith("wireguard-go\0")) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  if (readFileSync("/proc/self/mountinfo", "utf8").includes(` ${wgMountFile(ns)} `)) await run(["umount", wgMountFile(ns)]);
  rmSync(wgMountFile(ns), { force: true });
  rmSync(wgSocketDir(ns), { recursive: true, force: true });
}

/** The "action address" lines of a plan printed as JSON (`plan --json`, `apply --json`). */
export function plannedOf(json: string): string[] {
  return ((JSON.parse(json) as Json).changes as Json[]).map((c) => `${c.action} ${c.address}`).sort();
}

/** Line and column (1-based) where `needle` starts in a config text: for file:line:col checks. */
export function posOf(text: string, needle: string): { line: number; col: number } {
  const i = text.indexOf(needle);
  if (i < 0) throw new Error(`posOf: ${needle} not in config`);
  const before = text.slice(0, i).split("\n");
  return { line: before.length, col: before[before.length - 1]!.length + 1 };
}

/** Example configs, found at run time. */
export function exampleFiles(): string[] {
  const dir = join(REPO, "examples");
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /\.(toml|ya?ml)$/.test(f))
        .sort()
        .map((f) => join(dir, f))
    : [];
}

export async function waitForFile(path: string, timeoutMs: number, alive?: () => boolean): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${path}`);
    if (alive && !alive()) throw new Error(`the process exited before ${path} appeared`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
