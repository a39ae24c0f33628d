import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { BoltError } from "../core/diagnostics.js";
import type { Ns } from "../exec/runner.js";
import { API_VERSION, apiRequest, apiSocketPath } from "./socket.js";

/** What the CLI needs to decide whether a daemon plans exactly what it would plan itself. */
export interface RouteOpts {
  file: string[];
  netns?: string;
  stateDir: string;
  netnsPrefix?: string;
  /** false: --no-daemon */
  daemon?: boolean;
  /** a test's injected runner: never a daemon */
  runner?: unknown;
  out: (s: string) => void;
  err: (s: string) => void;
}

/** The identity a daemon reports in /v1/health; the CLI goes through it only when all of it matches. */
export interface DaemonIdentity {
  target: Ns;
  /** as the daemon was given them: plan text names them so */
  files: string[];
  files_resolved: string[];
  netns_prefix: string | null;
  state_dir: string;
  pid: number;
  /** watch: keeps its files converged; daemon: watches none, plans and applies the files a request names */
  mode: "watch" | "daemon";
}

export const identityOf = (t: Ns, files: string[], netnsPrefix: string | undefined, stateDir: string) => ({
  target: t,
  files: [...files],
  files_resolved: files.map((f) => resolve(f)),
  netns_prefix: netnsPrefix ?? null,
  state_dir: resolve(stateDir),
});

/**
 * plan / apply / show: when a daemon serves this target — its socket exists and /v1/health
 * names the same target, config files (spelled the same), netns prefix and state dir — the work is done there
 * (a warm process: modules loaded, config parsed, store open) and its output printed as is;
 * it is the same code (cmdPlan, cmdApply, cmdShow) so the bytes are the same. Otherwise
 * (no socket, a stale one, --no-daemon, a caller who cannot open it) undefined: do it here.
 *
 * `bolt daemon` (no files of its own) takes any absolute files. Under `bolt watch`, an apply of
 * other files than the daemon keeps converged is refused: the daemon's next pass
 * would undo it (one writer per target). --no-daemon applies anyway.
 */
export async function viaDaemon(o: RouteOpts, op: "plan" | "apply" | "show", body: Record<string, unknown>): Promise<number | undefined> {
  if (o.daemon === false || o.runner !== undefined) return undefined;
  const t: Ns = o.netns ?? null;
  const socket = apiSocketPath(t);
  if (!existsSync(socket)) return undefined;
  let health: Record<string, unknown>;
  try {
    const r = await apiRequest(socket, "GET", `/${API_VERSION}/health`, undefined, 2000);
    if (r.status !== 200 && r.status !== 503) return undefined;
    health = r.body;
  } catch {
    // A socket left by a daemon that died, or one this user may not open: the CLI does the work.
    return undefined;
  }
  const mine = identityOf(t, o.file, o.netnsPrefix, o.stateDir);
  const theirs = health.daemon as DaemonIdentity | undefined;
  if (!theirs || theirs.target !== mine.target || theirs.state_dir !== mine.state_dir || theirs.netns_prefix !== mine.netns_prefix) return undefined;
  if (theirs.mode === "daemon") {
    // It reads the files this CLI names; relative paths would resolve against its own working
    // directory (and plans name files as given), so only absolute ones go there.
    if (op !== "show" && (!o.file.length || !o.file.every(isAbsolute))) return undefined;
    return call(socket, op, { ...body, files: o.file }, o);
  }
  // show reads the kernel only: any files (or none) go.
  // Also spelled the same: plans and errors name the files as given (`# bolt-network.toml:14`).
  const same = JSON.stringify(theirs.files_resolved) === JSON.stringify(mine.files_resolved);
  if (op !== "show" && (!same || JSON.stringify(theirs.files) !== JSON.stringify(mine.files))) {
    if (op === "apply" && !same)
      throw new BoltError(
        `bolt watch (pid ${theirs.pid}) keeps ${t === null ? "the host namespace" : `netns "${t}"`} converged to ${theirs.files.join(", ")}; an apply of ${mine.files.join(", ") || "no files"} would be undone by its next pass. Edit those files (the daemon applies them), or stop it; --no-daemon applies here anyway`,
      );
    return undefined;
  }
  return call(socket, op, body, o);
}

async function call(socket: string, op: string, body: Record<string, unknown>, o: RouteOpts): Promise<number> {
  let r: Awaited<ReturnType<typeof apiRequest>>;
  try {
    // No time limit: an apply takes what it takes, and the daemon finishes it even if we stop waiting.
    r = await apiRequest(socket, "POST", `/${API_VERSION}/${op}`, { ...body, cli: true }, 0);
  } catch (e) {
    throw new BoltError(
      `the daemon at ${socket} stopped answering during ${op} (${(e as Error).message})${op === "apply" ? "; whether it applied is for `bolt plan` to show (an interrupted apply is rolled back at its next start)" : ""}`,
    );
  }
  if (typeof r.body.exit_code !== "number") throw new BoltError(`the daemon at ${socket} failed: ${String(r.body.error ?? `HTTP ${r.status}`)}`);
  if (typeof r.body.stdout === "string") o.out(r.body.stdout);
  if (typeof r.body.stderr === "string") o.err(r.body.stderr);
  return r.body.exit_code;
}
