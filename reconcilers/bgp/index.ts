import { existsSync } from "node:fs";
import { splitTail } from "../../src/core/tail-split.js";
import { join } from "node:path";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import type { LiveReader } from "../../src/core/live-reader.js";
import type { OpLine, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import { RUN_DIR } from "../../src/exec/run-dir.js";
import { nsName } from "../../src/exec/runner.js";
import type { Ns } from "../../src/exec/runner.js";
import { birdCheck } from "./bird-check.js";
import { parseProtocolsAll, parseServerTime, sessionLine } from "./birdc.js";
import { BGP, bgpIntent, passwordDigest, passwordProblem } from "./intent.js";
import type { BgpIntent } from "./intent.js";
import { configDigest, parseHeader, renderBirdConfig, summary } from "./render.js";

/**
 * `[routing.bgp]` through BIRD 2: bolt's own `bird` per target, started inside the target
 * namespace with its config, control socket and pid file in bolt's run dir
 * (RUN_DIR/bird/<target>/). That directory is how bolt knows its bird after a restart: the pid
 * file names the process, which must be a `bird` serving that control socket (any other bird
 * on the host is never looked at or touched). `loaded.conf` is the copy of what the running
 * bird has loaded, written only after bird accepted it; its digest against the rendered
 * config's decides whether anything changes, and `birdc configure` (which keeps sessions
 * whose options did not change) runs only then.
 */
export const BIRD_CONF = "bird.conf";

export function birdPaths(ns: Ns) {
  const dir = join(RUN_DIR(), "bird", ns === null ? "host" : `netns-${ns}`);
  return {
    dir,
    conf: join(dir, BIRD_CONF),
    loaded: join(dir, "loaded.conf"),
    prev: join(dir, "previous.conf"),
    ctl: join(dir, "bird.ctl"),
    pid: join(dir, "bird.pid"),
  };
}

const NAME = "bird";
const ID = `bgp:${NAME}`;

export const bgpReconciler: Reconciler = {
  kind: "bgp",
  // The run dir first; bird starts once the links its neighbors are reached over exist (and
  // the firewall and forwarding are in place); a config change of a running bird comes last.
  // Deletes run backwards: bird stops (and its kernel routes go) before anything else, then
  // its files; a later failure's rollback writes them back and starts bird again.
  phases: {
    files: {},
    daemon: { after: ["files", "network.link", "endpoint.inside", "wireguard.conf", "nft.table", "sysctl.write"] },
    conf: { after: ["daemon"] },
  },
  uses: ["network", "wireguard"],
  intent: bgpIntent,
  replaceOn: [],
  offlineUnchecked: "the BIRD config is not checked with `bird -p` and the BGP password files are not read (both need the target host)",

  desired(ctx) {
    const b = fragment(ctx.intent, BGP);
    if (!b) return { resources: [], diagnostics: [] };
    const template = renderBirdConfig(b).text;
    const resource: Resource = {
      kind: "bgp",
      name: NAME,
      id: ID,
      keys: [`bird:${birdPaths(ctx.target).dir}`],
      spec: { ...summary(b), config: configDigest(template), daemon: "running" },
      data: { bgp: b },
      deps: [],
      owned: true,
      source: b.source,
      fieldSources: { router_id: b.source, asn: b.source, neighbors: b.neighbors[0]?.source ?? b.source, announce: b.announce[0]?.source ?? b.source },
    };
    return { resources: [resource], diagnostics: [] };
  },

  async read(io, ctx) {
    const p = birdPaths(io.target);
    // bolt's run dir is its own (like the sysctl originals' copies there): without a bird of
    // bolt's for this target, and none wanted, a plan starts no process for BGP.
    if (!fragment(ctx.intent, BGP) && !existsSync(p.dir)) return { resources: [], foreign: new Map() };
    const files = splitTail((await io.exec(["tail", "-n", "+1", "--", p.pid, p.loaded, p.conf], null)).stdout);
    if (!files.size) return { resources: [], foreign: new Map() };
    const pid = Number((files.get(p.pid) ?? "").trim());
    const running = Number.isInteger(pid) && pid > 0 && (await isOurBird(io, pid, p.ctl));
    const loaded = files.get(p.loaded);
    const spec: Record<string, string> = {
      ...(loaded ? parseHeader(loaded) : {}),
      config: loaded ? configDigest(loaded) : "",
      daemon: running ? "running" : "stopped",
    };
    const counters = running ? await sessionCounters(io, p.ctl, pid) : undefined;
    const resource: Resource = {
      kind: "bgp",
      name: NAME,
      id: ID,
      keys: [`bird:${p.dir}`],
      spec,
      data: running ? { pid } : {},
      deps: [],
      owned: true,
      ...(counters ? { counters } : {}),
    };
    return { resources: [resource], foreign: new Map() };
  },

  // BGP listens on TCP 179 of the target: another daemon holding it there (a bird or FRR that
  // bolt did not start) would leave bolt's bird unable to accept sessions, silently. Only the
  // process bolt's pid file names may hold it.
  async conflicts(desired, io) {
    const d = desired[0];
    if (!d) return [];
    const r = await io.exec(["ss", "-H", "-l", "-t", "-n", "-p", "sport", "=", ":179"]);
    if (r.code !== 0 || !r.stdout.trim()) return [];
    const own = Number((await io.exec(["cat", birdPaths(io.target).pid], null)).stdout.trim());
    const others = [...new Map([...r.stdout.matchAll(/\("([^"]+)",pid=(\d+)/g)].filter((m) => Number(m[2]) !== own).map((m) => [m[2], m[1]]))];
    if (!others.length) return [];
    return [
      {
        severity: "error",
        message: `TCP port 179 (BGP) in ${nsName(io.target)} is held by ${others.map(([pid, name]) => `${name} (pid ${pid})`).join(", ")}, which bolt did not start: bolt's bird could not accept sessions there`,
        source: d.source,
        hint: "stop that daemon, or run bolt's BGP in another namespace",
      },
    ];
  },

  // bolt validate: BIRD's parser where it is installed (offline: no kernel, no password files).
  async validateTools(intent, runner) {
    const b = fragment(intent, BGP);
    if (!b) return [];
    const problem = await birdCheck(runner, b);
    if (problem === "no bird")
      return [
        {
          severity: "warning",
          message: "`bird` is not installed here: the rendered BIRD config is not checked with `bird -p` (plan checks it on the target)",
          source: b.source,
        },
      ];
    return problem ? [problem] : [];
  },

  // Only when something changes: the passwords are read from their files (the intent holds
  // digests), the full config is checked by `bird -p` (a bad neighbor or filter is a plan error
  // at the Boltfile line that produced it), and a delete fetches the loaded config for its undo.
  async prepare(changes, io) {
    const diagnostics: Diagnostic[] = [];
    const prepared = new Map<string, Record<string, unknown>>();
    for (const c of changes) {
      if (!c.after) {
        const r = await io.exec(["cat", birdPaths(io.target).loaded], null);
        prepared.set(c.id, { previous: r.code === 0 ? r.stdout : undefined });
        continue;
      }
      const b = c.after.data!.bgp as BgpIntent;
      const passwords = new Map<string, string>();
      for (const n of b.neighbors) {
        if (!n.passwordFile || passwords.has(n.passwordFile)) continue;
        const r = await io.exec(["cat", n.passwordFile], null);
        const pw = r.stdout.replace(/\r?\n$/, "");
        const problem =
          r.code !== 0
            ? "cannot be read"
            : (passwordProblem(pw) ?? (passwordDigest(pw) !== n.passwordDigest ? "changed since the config was loaded" : undefined));
        if (problem) diagnostics.push({ severity: "error", message: `BGP password file ${n.passwordFile} ${problem}`, source: n.source });
        else passwords.set(n.passwordFile, pw);
      }
      if (diagnostics.length) continue;
      const rendered = renderBirdConfig(b, passwords);
      const problem = await birdCheck(io.runner, b);
      if (problem === "no bird") {
        diagnostics.push({ severity: "error", message: "`bird` (BIRD 2) is not installed on the target host: [routing.bgp] needs it", source: b.source });
        continue;
      }
      if (problem) {
        diagnostics.push(problem);
        continue;
      }
      prepared.set(c.id, { text: rendered.text });
    }
    return { diagnostics, prepared };
  },

  render(change, ctx) {
    const p = birdPaths(ctx.target);
    const ns = ctx.target;
    const data = ctx.prepared.get(change.id) ?? {};
    const before = change.before;
    if (change.action === "delete") {
      const ops: RenderedOp[] = [];
      if (before!.spec.daemon === "running") {
        ops.push({ ...stop(p), phase: "daemon", undo: [start(ns, p)] });
        // BIRD withdraws its kernel routes while it shuts down: the destroy waits for it to end.
        ops.push({ ...local("tail", `--pid=${before!.data!.pid}`, "-s", "0.1", "-f", "/dev/null"), phase: "daemon", undo: [] });
      }
      const previous = data.previous as string | undefined;
      ops.push({
        ...local("rm", "-rf", "--", p.dir),
        phase: "files",
        undo: previous === undefined ? [] : [...writeFiles(p, previous), local("cp", "-p", p.conf, p.loaded)],
      });
      return ops;
    }
    const text = data.text as string;
    if (change.action === "create" || before!.spec.daemon !== "running") {
      // Nothing running (new, or bird died): write the file, start bird on it, record it as loaded.
      return [
        ...writeFiles(p, text).map(
          (l, i): RenderedOp => ({ ...l, phase: "files", undo: i === 0 && change.action === "create" ? [local("rm", "-rf", "--", p.dir)] : [] }),
        ),
        { ...start(ns, p), phase: "daemon", undo: [stop(p)] },
        { ...local("cp", "-p", p.conf, p.loaded), phase: "conf", undo: [] },
      ];
    }
    // A running bird: swap the file and reconfigure. A failed `birdc configure` leaves the old
    // config running (BIRD does that itself); the undo puts the old file back and reconfigures,
    // so file, copy and daemon agree again.
    const from = before!.spec.config ? p.loaded : p.conf;
    const restore = local("cp", "-p", p.prev, p.conf);
    return [
      { ...local("cp", "-p", from, p.prev), phase: "conf", undo: [] },
      { ...local("tee", p.conf), stdin: text, phase: "conf", undo: [restore] },
      { ...birdc(p, "configure"), phase: "conf", undo: [restore, birdc(p, "configure")] },
      { ...local("cp", "-p", p.conf, p.loaded), phase: "conf", undo: [local("cp", "-p", p.prev, p.loaded)] },
    ];
  },
};

type Paths = ReturnType<typeof birdPaths>;

/**
 * `bird -p`: BIRD's own parser on the template (passwords masked: they are checked by bolt, and
 * so never reach a file outside bird's run dir). BIRD reads only a named file (stdin from Node
 * is a socket it cannot open), so the text goes into a private temp file for the check.
 */
/** Files live in the host's filesystem; only bird itself runs in the target namespace. */
const local = (...args: string[]): OpLine => ({ tool: "exec", ns: null, args });

const birdc = (p: Paths, ...cmd: string[]): OpLine => local("birdc", "-s", p.ctl, ...cmd);

/** bird daemonizes once its control socket and pid file exist, so the next op can use them. */
const start = (ns: Ns, p: Paths): OpLine => ({ tool: "exec", ns, args: ["bird", "-c", p.conf, "-s", p.ctl, "-P", p.pid] });

/** The pid in bolt's pid file, and only if that process is a bird (pkill matches the name). */
const stop = (p: Paths): OpLine => local("pkill", "--pidfile", p.pid, "--exact", "bird");

/**
 * The run dir (0700) and the config (0600: it holds the session passwords); the config is
 * created empty with its mode first, then filled by `tee` from stdin (no shell, no temp file).
 */
function writeFiles(p: Paths, text: string): OpLine[] {
  return [local("install", "-d", "-m", "0700", p.dir), local("install", "-m", "0600", "/dev/null", p.conf), { ...local("tee", p.conf), stdin: text }];
}

/** The pid is a bird serving bolt's control socket for this target (a reused pid is someone else's). */
async function isOurBird(io: LiveReader, pid: number, ctl: string): Promise<boolean> {
  const r = await io.exec(["cat", `/proc/${pid}/cmdline`], null);
  if (r.code !== 0) return false;
  const argv = r.stdout.split("\0");
  return (argv[0] ?? "").split("/").pop() === "bird" && argv.some((a, i) => a === ctl && argv[i - 1] === "-s");
}

/** `bolt show`: each session's state, uptime and prefix counts, as counters (shown, never state). */
async function sessionCounters(io: LiveReader, ctl: string, pid: number): Promise<Record<string, string>> {
  const [protos, status] = await Promise.all([
    io.exec(["birdc", "-s", ctl, "show", "protocols", "all"], null, { timeoutMs: 5000 }),
    io.exec(["birdc", "-s", ctl, "show", "status"], null, { timeoutMs: 5000 }),
  ]);
  const counters: Record<string, string> = { daemon: `pid ${pid}` };
  if (protos.code !== 0) {
    counters.neighbors = `birdc: ${protos.stderr.trim() || protos.stdout.trim() || "no answer"}`;
    return counters;
  }
  const now = parseServerTime(status.stdout);
  const lines = parseProtocolsAll(protos.stdout)
    .filter((x) => x.proto === "BGP")
    .map((x) => {
      const line = sessionLine(x, now);
      counters[`session ${x.neighborAddress ?? x.name}`] = line;
      return line;
    });
  counters.neighbors = lines.join("; ");
  return counters;
}
