import { request } from "node:http";
import { resolve } from "node:path";
import { RUN_DIR } from "../exec/run-dir.js";
import type { Ns } from "../exec/runner.js";

/** The API's version: the first segment of every path. Incompatible changes get /v2. */
export const API_VERSION = "v1";

/**
 * Where the daemon serving a target listens: `--api-socket`, else BOLT_API_SOCKET, else
 * `<run dir>/<target>.sock` (/run/bolt/<target>.sock; `_host` for the host's own namespace).
 * The CLI finds a daemon at the same place with the same rule.
 */
export function apiSocketPath(t: Ns, explicit?: string): string {
  return resolve(explicit ?? process.env.BOLT_API_SOCKET ?? `${RUN_DIR()}/${t || "_host"}.sock`);
}

export interface ApiResponse {
  status: number;
  body: Record<string, unknown>;
}

/** One JSON request over the unix socket. Rejects on a connect error (no daemon, not root) or a timeout (0: none). */
export function apiRequest(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 300_000): Promise<ApiResponse> {
  return new Promise((resolvePromise, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        // A connection per request: a pooled keep-alive one may be closed by the server (its idle
        // timeout, a restart) just as it is reused, and an apply must not be lost to ECONNRESET.
        agent: false,
        method,
        path,
        headers: payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          try {
            resolvePromise({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
          } catch (e) {
            reject(new Error(`the daemon at ${socketPath} answered ${method} ${path} with something that is not JSON: ${(e as Error).message}`));
          }
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (timeoutMs > 0)
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from the daemon at ${socketPath} within ${Math.round(timeoutMs / 1000)}s`)));
    req.end(payload);
  });
}
