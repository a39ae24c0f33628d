import type { RuntimeEndpoint } from "../daemon/runtime-endpoints.js";
import type { CommandRunner } from "../exec/runner.js";
import type { BoltCniConfig } from "./request.js";
import { daemonEngine } from "./daemon-engine.js";
import { localEngine } from "./local-engine.js";

/**
 * Where an attachment becomes a runtime endpoint of the bolt target (docs/api.md): through the
 * API of a daemon serving that target and state dir (the fast path: a warm process, and the
 * daemon stays the one writer), or, with none, here — the same record in the state store and
 * the same plan/apply (journal, verify, rollback) under the target's lock.
 */
export interface Engine {
  via: "daemon" | "local";
  /** the --netns-prefix the target's endpoints are planned with: a runtime endpoint's namespace is PREFIX + its name */
  netnsPrefix: string;
  /** the config files whose networks endpoints attach to */
  files(): string[];
  recorded(name: string): Promise<RuntimeEndpoint | undefined>;
  /** every runtime endpoint of the target (a container's other attachments share its namespace name) */
  list(): Promise<RuntimeEndpoint[]>;
  /** records and applies; throws a CniError (nothing recorded) when refused or rolled back */
  attach(ep: RuntimeEndpoint): Promise<void>;
  /** forgets and applies; a name not recorded is nothing to do */
  detach(name: string): Promise<void>;
}

export async function chooseEngine(config: BoltCniConfig, runner: CommandRunner): Promise<Engine> {
  return (await daemonEngine(config)) ?? localEngine(config, runner);
}
