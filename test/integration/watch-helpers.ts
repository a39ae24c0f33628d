// Helpers for the daemon, confirm and CI-plan tests: polling, a free TCP port, HTTP GETs,
// Prometheus text lookups, and a PATH of kernel tools that refuse to run (proves "offline").
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { get } from "node:http";
import { join } from "node:path";

/** Polls `fn` until it returns a truthy value (returned) or the time is up (throws with `what`). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port nothing listens on right now (bound to 127.0.0.1:0, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = a && typeof a === "object" ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
  });
}

/** The value of one sample in Prometheus text format (labels as written, e.g. `{outcome="applied"}`). */
export function metric(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** pino JSON lines from a daemon's stderr (other lines skipped). */
export function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * A PATH whose ip, nft, sysctl, iptables-save and wg log their call and fail: a command run
 * with it that still succeeds touched no kernel tool. Returns the env and the call log path.
 */
export function noKernelEnv(parent: string): { env: Record<string, string>; calls: () => string[] } {
  // Under the sandbox's dir: its cleanup removes it.
  const bin = mkdtempSync(join(parent, "nokernel-"));
  const log = join(bin, "calls.log");
  writeFileSync(log, "");
  for (const tool of ["ip", "nft", "sysctl", "iptables-save", "wg", "tc"]) {
    const p = join(bin, tool);
    writeFileSync(p, `#!/bin/sh\necho "${tool} $*" >> "${log}"\necho "${tool}: no kernel access in this test" >&2\nexit 99\n`);
    chmodSync(p, 0o755);
  }
  return { env: { PATH: `${bin}:${process.env.PATH ?? ""}` }, calls: () => readFileSync(log, "utf8").split("\n").filter(Boolean) };
}
