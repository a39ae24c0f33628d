import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { DaemonIdentity } from "../daemon/client.js";
import type { RuntimeEndpoint } from "../daemon/runtime-endpoints.js";
import { API_VERSION, apiRequest, apiSocketPath } from "../daemon/socket.js";
import type { Engine } from "./engine.js";
import { CNI_CODE, CniError } from "./errors.js";
import type { BoltCniConfig } from "./request.js";

/** An apply may wait for a daemon pass in flight: generous, the daemon finishes it anyway. */
const APPLY_TIMEOUT_MS = 120_000;

/**
 * The daemon serving the config's target and state dir, when one answers on its socket
 * (the rule the CLI uses, src/daemon/client.ts): its runtime endpoints API does the attach.
 */
export async function daemonEngine(config: BoltCniConfig): Promise<Engine | undefined> {
  const socket = apiSocketPath(config.target);
  if (!existsSync(socket)) return undefined;
  let identity: DaemonIdentity | undefined;
  try {
    const h = await apiRequest(socket, "GET", `/${API_VERSION}/health`, undefined, 2000);
    identity = h.body.daemon as DaemonIdentity | undefined;
  } catch {
    // A socket left by a daemon that died: the plugin does the work itself.
    return undefined;
  }
  if (!identity || identity.target !== config.target || identity.state_dir !== resolve(config.stateDir)) return undefined;
  const api = (method: string, path: string, body?: unknown) =>
    apiRequest(socket, method, `/${API_VERSION}/endpoints${path}`, body, APPLY_TIMEOUT_MS).catch((e: Error) => {
      throw new CniError(CNI_CODE.tryAgainLater, `the bolt daemon (pid ${identity!.pid}) at ${socket} did not answer: ${e.message}`);
    });
  const failed = (status: number, body: Record<string, unknown>) => {
    const msg = String(body.error ?? `HTTP ${status}`);
    // 422: the config pipeline rejects the endpoint (its network, its address): the CNI config's problem.
    return new CniError(status === 422 ? CNI_CODE.invalidConfig : CNI_CODE.engine, `bolt daemon: ${msg.split("\n")[0]}`, msg);
  };
  return {
    via: "daemon",
    netnsPrefix: identity.netns_prefix ?? "",
    files: () => identity!.files_resolved,
    async recorded(name) {
      const r = await api("GET", `/${encodeURIComponent(name)}`);
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw failed(r.status, r.body);
      return r.body as unknown as RuntimeEndpoint;
    },
    async list() {
      const r = await api("GET", "");
      if (r.status !== 200) throw failed(r.status, r.body);
      return (r.body.endpoints ?? []) as RuntimeEndpoint[];
    },
    async attach(ep) {
      const r = await api("POST", "", ep);
      if (r.status !== 201) throw failed(r.status, r.body);
    },
    async detach(name) {
      const r = await api("DELETE", `/${encodeURIComponent(name)}`);
      if (r.status !== 200 && r.status !== 404) throw failed(r.status, r.body);
    },
  };
}
