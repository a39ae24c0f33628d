import { createHash } from "node:crypto";
import { isAbsolute } from "node:path";
import { CNI_CODE, CniError } from "./errors.js";

/** The CNI versions whose config and result formats this plugin reads and writes. */
export const SUPPORTED_VERSIONS = ["0.4.0", "1.0.0"] as const;
/** What errors name as their version before the config's own is known. */
export const NEWEST_VERSION = "1.0.0";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS";
const COMMANDS = new Set<string>(["ADD", "DEL", "CHECK", "VERSION", "STATUS"]);

/** The network config bolt-cni reads (the runtime adds prevResult, runtimeConfig, args). */
export interface BoltCniConfig {
  cniVersion: string;
  name: string;
  type: string;
  /** the bolt network (a `[networks.NAME]` of the target's config) the container joins */
  network: string;
  /** the bolt target: the namespace that holds the network's bridge; null = the host's own */
  target: string | null;
  stateDir: string;
  prevResult?: CniResult;
}

export interface CniRequest {
  command: CniCommand;
  containerId: string;
  /** the container's network namespace as the runtime names it (/proc/PID/ns/net, /var/run/netns/X); may be "" on DEL */
  netnsPath: string;
  ifname: string;
  config: BoltCniConfig;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number; version?: string }[];
  routes?: { dst: string; gw?: string }[];
  dns?: CniDns;
}

/** The result's `dns` (spec: nameservers, domain, search, options), from the bolt network's dns and search. */
export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

// The spec's container id: alphanumerics, "_", "." and "-", starting alphanumeric.
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// What the kernel takes as an interface name: 1–15 bytes, no "/", ":" or whitespace (IFNAMSIZ is 16 with the NUL).
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** CNI_COMMAND alone (VERSION needs no config beyond its version). */
export function commandOf(env: NodeJS.ProcessEnv): CniCommand {
  const c = env.CNI_COMMAND ?? "";
  if (!COMMANDS.has(c)) throw new CniError(CNI_CODE.invalidEnv, `CNI_COMMAND ${c ? `"${c}" is not ADD, DEL, CHECK, STATUS or VERSION` : "is not set"}`);
  return c as CniCommand;
}

/** The config's cniVersion when stdin is a JSON object that has one (for the error document). */
export function versionOf(stdin: string): string | undefined {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The network config from stdin: every field bolt uses checked, an `ipam` section refused. */
export function parseConfig(stdin: string, command: CniCommand): BoltCniConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(CNI_CODE.decode, `the network config on stdin is not JSON: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new CniError(CNI_CODE.decode, "the network config on stdin is not a JSON object");
  const c = raw as Record<string, unknown>;
  const str = (k: string, required: boolean): string | undefined => {
    const v = c[k];
    if (v === undefined && !required) return undefined;
    if (typeof v !== "string" || !v)
      throw new CniError(CNI_CODE.invalidConfig, `network config: "${k}" ${v === undefined ? "is required" : "must be a non-empty string"}`);
    return v;
  };
  const cniVersion = str("cniVersion", true)!;
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion))
    throw new CniError(CNI_CODE.incompatibleVersion, `cniVersion ${cniVersion} is not supported`, `bolt-cni speaks ${SUPPORTED_VERSIONS.join(", ")}`);
  const name = str("name", true)!;
  const type = str("type", true)!;
  if (command === "VERSION") return { cniVersion, name, type, network: "", target: null, stateDir: "" };
  const network = str("network", true)!;
  const target = str("netns", false) ?? null;
  if (target !== null && !NS_NAME.test(target))
    throw new CniError(
      CNI_CODE.invalidConfig,
      `network config: "netns" "${target}" is not a network namespace name`,
      "the bolt target: a name `ip netns list` shows",
    );
  const stateDir = str("stateDir", false) ?? process.env.BOLT_STATE_DIR ?? "/var/lib/bolt";
  if (!isAbsolute(stateDir)) throw new CniError(CNI_CODE.invalidConfig, `network config: "stateDir" ${stateDir} is not an absolute path`);
  // bolt leases the address from its own store: an ipam section would be silently ignored.
  if (c.ipam !== undefined)
    throw new CniError(
      CNI_CODE.unsupportedField,
      `network config: "ipam" = ${JSON.stringify(c.ipam)} is not supported`,
      "bolt assigns addresses from the bolt network's pool; remove the ipam section",
    );
  const prev = c.prevResult;
  if (prev !== undefined && (!prev || typeof prev !== "object" || Array.isArray(prev)))
    throw new CniError(CNI_CODE.decode, 'network config: "prevResult" is not a result object');
  return { cniVersion, name, type, network, target, stateDir, ...(prev ? { prevResult: prev as CniResult } : {}) };
}

/** The CNI_* variables the command needs (spec: ADD and CHECK need all four, DEL all but CNI_NETNS). */
export function parseRequest(env: NodeJS.ProcessEnv, stdin: string): CniRequest {
  const command = commandOf(env);
  const config = parseConfig(stdin, command);
  if (command === "VERSION" || command === "STATUS") return { command, containerId: "", netnsPath: "", ifname: "", config };
  const containerId = env.CNI_CONTAINERID ?? "";
  if (!CONTAINER_ID.test(containerId))
    throw new CniError(CNI_CODE.invalidEnv, `CNI_CONTAINERID ${containerId ? `"${containerId}" is not alphanumerics, "_", "." and "-"` : "is not set"}`);
  const ifname = env.CNI_IFNAME ?? "";
  if (!IFNAME.test(ifname))
    throw new CniError(
      CNI_CODE.invalidEnv,
      `CNI_IFNAME ${ifname ? `"${ifname}" is not an interface name (1–15 letters, digits, "_", ".", "-")` : "is not set"}`,
    );
  const netnsPath = env.CNI_NETNS ?? "";
  if (command !== "DEL" && !isAbsolute(netnsPath))
    throw new CniError(
      CNI_CODE.invalidEnv,
      `CNI_NETNS ${netnsPath ? `"${netnsPath}" is not an absolute path` : "is not set"}`,
      "the container's namespace: /proc/PID/ns/net or /var/run/netns/NAME",
    );
  return { command, containerId, netnsPath, ifname, config };
}

/**
 * The bolt endpoint of one attachment, keyed by container id + ifname (the spec's identity of
 * an attachment): a hash, so any container id makes a valid endpoint and namespace name, and
 * the lease in bolt's store (keyed by endpoint name) is the attachment's.
 */
export function endpointName(containerId: string, ifname: string): string {
  return `cni-${createHash("sha256").update(`${containerId}\0${ifname}`).digest("hex").slice(0, 12)}`;
}

/**
 * The bolt name of a container's namespace, keyed by container id alone: every attachment of
 * the container (eth0 on one network, eth1 on another) is an endpoint in this one namespace, so
 * bolt plans them together (one default route, each interface its own name).
 */
export function containerNetns(containerId: string): string {
  return `cni-ns-${createHash("sha256").update(containerId).digest("hex").slice(0, 12)}`;
}
