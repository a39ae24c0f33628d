import { existsSync } from "node:fs";
import { loadFile } from "../config/load.js";
import { INNER_IFNAME } from "../core/conventions.js";
import type { IpLink } from "../core/live-reader.js";
import { decodeAlias } from "../core/ownership.js";
import { defined } from "../daemon/runtime-endpoints.js";
import { ProcessRunner } from "../exec/process-runner.js";
import type { CommandRunner } from "../exec/runner.js";
import { inNetns } from "../exec/runner.js";
import { checkAttachment, readAttachment, resultOf } from "./attachment.js";
import { chooseEngine } from "./engine.js";
import type { Engine } from "./engine.js";
import { CNI_CODE, CniError, errorJson } from "./errors.js";
import { NETNS_DIR, aliasOf, bindAlias, checkNetnsPath, removeAlias } from "./netns-alias.js";
import { NEWEST_VERSION, SUPPORTED_VERSIONS, commandOf, containerNetns, endpointName, parseRequest, versionOf } from "./request.js";
import type { CniDns, CniRequest } from "./request.js";

/**
 * bolt-cni: a CNI 1.0 plugin (ADD, DEL, CHECK, VERSION, and STATUS) whose attachments are
 * runtime endpoints of a bolt target — a veth from the bolt network's bridge into the
 * container's namespace, its address leased in bolt's store, planned and applied by bolt's
 * engine like any `[[endpoints]]` entry. Prints the result or the error document on `out`
 * and returns the exit code.
 */
export async function cniMain(env: NodeJS.ProcessEnv, stdin: string, out: (s: string) => void, runner: CommandRunner = new ProcessRunner()): Promise<number> {
  let version = versionOf(stdin) ?? NEWEST_VERSION;
  try {
    if (commandOf(env) === "VERSION") {
      out(`${JSON.stringify({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS })}\n`);
      return 0;
    }
    const req = parseRequest(env, stdin);
    version = req.config.cniVersion;
    const text = await run(req, runner);
    if (text !== undefined) out(text);
    return 0;
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(CNI_CODE.engine, `internal: ${(e as Error)?.message ?? String(e)}`, (e as Error)?.stack ?? "");
    out(errorJson(err, version));
    return 1;
  }
}

async function run(req: CniRequest, runner: CommandRunner): Promise<string | undefined> {
  const { config } = req;
  const t = config.target;
  const name = endpointName(req.containerId, req.ifname);
  const netns = containerNetns(req.containerId);
  // The bolt target must be there before anything is touched (bolt never creates its target).
  if (t !== null && !existsSync(`${NETNS_DIR}/${t}`)) {
    // DEL: the target went, and every veth in it with it; only the namespace name may be left.
    if (req.command === "DEL") return void (await removeAlias(runner, (process.env.BOLT_NETNS_PREFIX ?? "") + netns));
    throw new CniError(CNI_CODE.invalidConfig, `network config: "netns" ${t}: no such network namespace`, "the bolt target that holds the network's bridge");
  }
  const engine = await chooseEngine(config, runner);
  const nsName = engine.netnsPrefix + netns;
  switch (req.command) {
    case "ADD":
      return add(req, engine, runner, name, netns, nsName);
    case "DEL": {
      // Idempotent: no record (DEL twice, an ADD that never finished) is nothing to detach. The
      // name goes with the container's last attachment, whether or not its namespace still exists.
      await engine.detach(name);
      if (!(await engine.list()).some((e) => e.netns === netns)) await removeAlias(runner, nsName);
      return undefined;
    }
    case "CHECK": {
      if (!(await engine.recorded(name))) throw new CniError(CNI_CODE.unknownContainer, `no bolt attachment for container ${req.containerId} ${req.ifname}`);
      if (!aliasOf(nsName, req.netnsPath)) throw new CniError(CNI_CODE.checkFailed, `the attachment's namespace ${nsName} is not CNI_NETNS ${req.netnsPath}`);
      const problems = await checkAttachment(runner, t, name, nsName, req.ifname, config.prevResult);
      if (problems.length) throw new CniError(CNI_CODE.checkFailed, `endpoint ${name}: ${problems[0]}`, problems.join("\n"));
      return undefined;
    }
    case "STATUS":
      await status(req, engine, runner);
      return undefined;
    default:
      throw new CniError(CNI_CODE.invalidEnv, `CNI_COMMAND ${req.command} is not handled`);
  }
}

async function add(req: CniRequest, engine: Engine, runner: CommandRunner, name: string, netns: string, nsName: string): Promise<string> {
  const { config } = req;
  checkNetnsPath(req.netnsPath);
  const dns = knownNetwork(engine, config.network);
  const rec = await engine.recorded(name);
  if (rec) {
    // A repeated ADD (a runtime retrying) of the same namespace answers what is there.
    if (!aliasOf(nsName, req.netnsPath) || rec.network !== config.network)
      throw new CniError(
        CNI_CODE.engine,
        `container ${req.containerId} ${req.ifname} is already attached (endpoint ${name}, network ${rec.network}) to another namespace or network`,
        "DEL it first",
      );
  } else {
    // A container's second attachment finds the name bound by its first.
    const first = !aliasOf(nsName, req.netnsPath);
    await bindAlias(runner, nsName, req.netnsPath);
    try {
      // The interface CNI_IFNAME names; eth0 carries the default route, a secondary one (eth1,
      // net1, …) reaches its network's subnet only, as the bridge plugin without isDefaultGateway.
      await engine.attach({ name, network: config.network, netns, ifname: req.ifname, default: req.ifname === INNER_IFNAME });
    } catch (e) {
      if (first) await removeAlias(runner, nsName).catch(() => {});
      throw e;
    }
  }
  const a = await readAttachment(runner, config.target, name, nsName, req.ifname);
  return `${JSON.stringify(resultOf(a, req.ifname, req.netnsPath, config.cniVersion, dns), null, 2)}\n`;
}

/**
 * The CNI config's network must be one of the target's config files (checked before anything is
 * touched). Returns the network's nameservers and search domains for the result's `dns` (a
 * runtime writes the container's resolv.conf from it, as from a bridge plugin's IPAM).
 */
function knownNetwork(engine: Engine, network: string): CniDns {
  const files = engine.files();
  const loaded = files.map((f) => {
    try {
      return loadFile(f);
    } catch (e) {
      throw new CniError(CNI_CODE.invalidConfig, `bolt's config ${f} does not load: ${(e as Error).message.split("\n")[0]}`);
    }
  });
  const { networks } = defined(loaded);
  if (!networks.has(network))
    throw new CniError(
      CNI_CODE.invalidConfig,
      `network config: "network" ${network} is not a bolt network of ${files.join(", ")}`,
      networks.size ? `defined networks: ${[...networks].join(", ")}` : "those files define no network",
    );
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  for (const f of loaded) {
    const n = f.kind === "boltfile" ? ((f.data.networks ?? {}) as Record<string, { dns?: unknown; search?: unknown }>)[network] : undefined;
    if (!n) continue;
    const nameservers = strings(n.dns);
    const search = strings(n.search);
    return { ...(nameservers.length ? { nameservers } : {}), ...(search.length ? { search } : {}) };
  }
  return {};
}

/** STATUS: the network is in the config and its bridge is in the kernel, up. */
async function status(req: CniRequest, engine: Engine, runner: CommandRunner): Promise<void> {
  try {
    knownNetwork(engine, req.config.network);
  } catch (e) {
    throw new CniError(CNI_CODE.notAvailable, (e as Error).message, (e as CniError).details);
  }
  const r = await runner.run(inNetns(req.config.target, ["ip", "-j", "link", "show", "type", "bridge"]));
  const bridges = r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as IpLink[]) : [];
  const bridge = bridges.find((l) => decodeAlias(l.ifalias)?.net === req.config.network);
  if (!bridge?.flags.includes("UP"))
    throw new CniError(
      CNI_CODE.notAvailable,
      `bolt network ${req.config.network} has no bridge up in ${req.config.target ?? "the host namespace"}`,
      "apply bolt's config",
    );
}
