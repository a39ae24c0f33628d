import type { ApplyProgress } from "../core/apply.js";

/**
 * Progress of a long apply or destroy, like Terraform's "Still creating… [10s elapsed]":
 * on a terminal (stderr is a TTY, no --json) a line appears once the apply has run for a
 * second, and is rewritten in place as waves finish and at least every 2 s while a slow wave
 * runs; it is cleared when the apply ends, so the summary after it reads as before. `json`:
 * one JSON event per wave on stderr (`--progress json`), for a wrapper that shows its own.
 * `never`, a pipe or --json without a request: nothing.
 */
export type ProgressMode = "auto" | "never" | "json";

export interface ProgressSink {
  onProgress: (e: ApplyProgress) => void;
  /** stops the timer and clears the line */
  end: () => void;
}

const FIRST_AFTER_MS = 1000;
const REFRESH_MS = 2000;

export function progressSink(
  mode: ProgressMode,
  what: "apply" | "destroy",
  out: { isTTY?: boolean; write: (s: string) => unknown },
  opts: { json?: boolean; now?: () => number; setInterval?: typeof setInterval; clearInterval?: typeof clearInterval } = {},
): ProgressSink | undefined {
  if (mode === "never") return undefined;
  if (mode === "json")
    return {
      onProgress: (e) => out.write(`${JSON.stringify({ event: "progress", command: what, ...e, elapsedMs: Math.round(e.elapsedMs) })}\n`),
      end: () => {},
    };
  if (!out.isTTY || opts.json) return undefined;
  const now = opts.now ?? (() => performance.now());
  const every = opts.setInterval ?? setInterval;
  const stop = opts.clearInterval ?? clearInterval;
  const t0 = now();
  let last: ApplyProgress | undefined;
  let shown = false;
  const draw = () => {
    const elapsed = now() - t0;
    if (elapsed < FIRST_AFTER_MS) return;
    out.write(`\r\x1b[2K${describe(what, last, elapsed)}`);
    shown = true;
  };
  const timer = every(draw, REFRESH_MS);
  // An apply that starts before the first tick still shows up after a second, not two.
  const first = setTimeout(draw, FIRST_AFTER_MS);
  (timer as { unref?: () => void }).unref?.();
  first.unref?.();
  return {
    onProgress: (e) => {
      last = e;
      draw();
    },
    end: () => {
      stop(timer);
      clearTimeout(first);
      if (shown) out.write("\r\x1b[2K");
    },
  };
}

/** "Still applying… wave 3/7, 12/40 resources (310/1200 ops), 4s elapsed". */
export function describe(what: "apply" | "destroy", e: ApplyProgress | undefined, elapsedMs: number): string {
  const verb = what === "destroy" ? "Still destroying…" : "Still applying…";
  const secs = `${Math.floor(elapsedMs / 1000)}s elapsed`;
  if (!e) return `${verb} ${secs}`;
  if (e.phase === "verify") return `${verb} verifying what ${e.steps} resource(s) changed, ${secs}`;
  if (e.phase === "rollback") return `${verb} rolling back, ${secs}`;
  return `${verb} wave ${e.wave}/${e.waves}, ${e.stepsDone}/${e.steps} resources (${e.opsDone}/${e.ops} ops), ${secs}`;
}
