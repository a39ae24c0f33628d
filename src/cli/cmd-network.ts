import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BoltError, EXIT, formatPos } from "../core/diagnostics.js";
import { fragment } from "../core/intent.js";
import type { Intent } from "../core/intent.js";
import { emptyIntent } from "../core/intent.js";
import { formatCidr4, formatIp4, parseCidr4, parseIp4 } from "../core/ipv4.js";
import { isConfigDir } from "../config/config-dir.js";
import { NETWORKS } from "../../reconcilers/network/intent.js";
import { ENDPOINTS } from "../../reconcilers/endpoint/intent.js";
import { loadIntent } from "./config.js";
import { cmdApply } from "./commands.js";
import type { GlobalOpts } from "./commands.js";

/**
 * `bolt network create|ls|rm|connect|disconnect`: imperative verbs that stay declarative. Each
 * writes or removes ONE small file of its own in the config directory (`NAME.toml` for a
 * network, `NAME@ENDPOINT.toml` for a connection: "@" is not allowed in names, so the two never
 * meet), then applies the directory (plus any `-f` files) like `bolt apply -f DIR`. A change the
 * config or the kernel refuses is taken back: the directory is left exactly as it was. Other
 * files are never rewritten (their comments and layout are the user's).
 */
export interface NetworkCmdOptions extends GlobalOpts {
  action: "create" | "ls" | "rm" | "connect" | "disconnect";
  name?: string;
  endpoint?: string;
  dir: string;
  subnet?: string;
  gateway?: string;
  internet?: boolean;
  isolated?: boolean;
  ip?: string;
  /** false: write the file and validate, do not apply */
  apply: boolean;
}

/** The schema's name grammar; also what makes a safe file name (no "/", no leading "."). */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

export async function cmdNetwork(o: NetworkCmdOptions): Promise<number> {
  const dir = resolve(o.dir);
  const files = [...(existsSync(dir) ? [dir] : []), ...o.file];
  const current = (): Intent => (files.length ? loadIntent(files, o.netnsPrefix, { offline: true }).intent : emptyIntent());
  if (o.action === "ls") return list(o, current());
  const name = need(o.name, "a network name");
  checkName(name, "network");
  if (existsSync(dir) && !isConfigDir(dir)) throw new BoltError(`--dir ${dir} is not a directory`);
  const intent = current();
  const networks = fragment(intent, NETWORKS);
  const endpoints = fragment(intent, ENDPOINTS);
  const net = networks.find((n) => n.name === name);
  const own = join(dir, `${name}.toml`);
  switch (o.action) {
    case "create": {
      if (net) throw new BoltError(`network "${name}" already exists (${formatPos(net.source)})`);
      return change(o, dir, own, createText(name, o));
    }
    case "rm": {
      if (!net) throw new BoltError(`no network "${name}" in ${files.join(", ") || dir}`);
      if (resolve(net.source.file) !== own)
        throw new BoltError(`network "${name}" is defined in ${formatPos(net.source)}, not by \`bolt network create\`: edit that file instead`);
      const on = endpoints.filter((e) => e.network === name);
      if (on.length)
        throw new BoltError(
          `network "${name}" still has endpoints: ${on.map((e) => `${e.name} (${formatPos(e.source)})`).join(", ")}; disconnect them first (\`bolt network disconnect ${name} ENDPOINT\`)`,
        );
      return change(o, dir, own, undefined);
    }
    case "connect": {
      const ep = need(o.endpoint, "an endpoint (the container or job namespace) to connect");
      checkName(ep, "endpoint");
      if (!net) throw new BoltError(`no network "${name}" to connect to (create it with \`bolt network create ${name} --subnet …\`)`);
      const ns = `${o.netnsPrefix ?? ""}${ep}`;
      const twice = endpoints.find((e) => e.network === name && (e.name === ep || e.netns === ns));
      if (twice) throw new BoltError(`${ep} is already connected to network "${name}" (${formatPos(twice.source)})`);
      if (o.ip !== undefined && parseIp4(o.ip) === undefined) throw new BoltError(`--ip ${o.ip} is not an IPv4 address`);
      // A namespace already on another network gets a second endpoint (eth1…): its own name.
      const epName = endpoints.some((e) => e.name === ep) ? `${ep}-${name}`.slice(0, 32) : ep;
      return change(o, dir, join(dir, `${name}@${ep}.toml`), connectText(name, ep, epName, o.ip));
    }
    case "disconnect": {
      const ep = need(o.endpoint, "the endpoint to disconnect");
      checkName(ep, "endpoint");
      const file = join(dir, `${name}@${ep}.toml`);
      if (!existsSync(file)) {
        const other = endpoints.find((e) => e.network === name && (e.name === ep || e.netns === `${o.netnsPrefix ?? ""}${ep}`));
        if (other)
          throw new BoltError(`${ep} is connected to "${name}" in ${formatPos(other.source)}, not by \`bolt network connect\`: edit that file instead`);
        throw new BoltError(`${ep} is not connected to network "${name}"`);
      }
      return change(o, dir, file, undefined);
    }
  }
}

function need(v: string | undefined, what: string): string {
  if (!v) throw new BoltError(`name ${what}`);
  return v;
}

function checkName(name: string, what: string): void {
  if (!NAME_RE.test(name))
    throw new BoltError(
      `${what} name "${name}" is not a file-safe name: letters, digits, "_", "." and "-", starting with a letter or digit, at most 32 characters`,
    );
}

function createText(name: string, o: NetworkCmdOptions): string {
  const subnet = need(o.subnet, "--subnet (e.g. --subnet 10.20.0.0/24)");
  const c = parseCidr4(subnet);
  if (!c || c.hostBits) throw new BoltError(`--subnet ${subnet} is not an IPv4 CIDR without host bits`);
  if (o.gateway !== undefined && parseIp4(o.gateway) === undefined) throw new BoltError(`--gateway ${o.gateway} is not an IPv4 address`);
  const lines = [
    `# Written by \`bolt network create ${name}\`; \`bolt network rm ${name}\` removes this file.`,
    `[networks.${name}]`,
    `subnet = "${formatCidr4(c)}"`,
    ...(o.gateway ? [`gateway = "${formatIp4(parseIp4(o.gateway)!)}"`] : []),
    ...(o.internet === false ? ["internet = false"] : []),
    ...(o.isolated === false ? ["isolated = false"] : []),
  ];
  return lines.join("\n") + "\n";
}

function connectText(network: string, ns: string, name: string, ip?: string): string {
  return (
    [
      `# Written by \`bolt network connect ${network} ${ns}\`; \`bolt network disconnect ${network} ${ns}\` removes this file.`,
      "[[endpoints]]",
      `name = "${name}"`,
      `network = "${network}"`,
      `netns = "${ns}"`,
      ...(ip ? [`ip = "${formatIp4(parseIp4(ip)!)}"`] : []),
    ].join("\n") + "\n"
  );
}

/**
 * Writes (content) or removes (undefined) one file, checks the whole config, applies; on any
 * failure puts the file back as it was (absent, or its old bytes) and rethrows. The apply itself
 * rolls the kernel back, so a refused change leaves both the directory and the kernel unchanged.
 */
async function change(o: NetworkCmdOptions, dir: string, file: string, content: string | undefined): Promise<number> {
  if (content !== undefined && existsSync(file)) throw new BoltError(`${file} already exists: remove it first or pick another name`);
  const createdDir = !existsSync(dir);
  const old = content === undefined ? readFileSync(file) : undefined;
  if (createdDir) mkdirSync(dir, { recursive: true, mode: 0o755 });
  const undo = () => {
    if (old !== undefined) writeFileSync(file, old);
    else if (existsSync(file)) unlinkSync(file);
    if (createdDir) rmdirSync(dir);
  };
  try {
    if (content !== undefined) {
      // Written whole under a hidden name (the directory merge skips it), then renamed: a daemon
      // watching the directory never reads half a file.
      const tmp = join(dir, `.${file.slice(dir.length + 1)}.tmp`);
      writeFileSync(tmp, content, { mode: 0o644 });
      renameSync(tmp, file);
    } else unlinkSync(file);
    const files = [dir, ...o.file];
    loadIntent(files, o.netnsPrefix);
    if (o.apply) {
      const code = await cmdApply({ ...o, file: files });
      if (code !== EXIT.OK) throw new BoltError(`apply failed (exit ${code}): ${file} was put back`);
    }
    o.out(`${content === undefined ? "Removed" : "Wrote"} ${file}.\n`);
    return EXIT.OK;
  } catch (e) {
    undo();
    throw e;
  }
}

function list(o: NetworkCmdOptions, intent: Intent): number {
  const endpoints = fragment(intent, ENDPOINTS);
  const rows = fragment(intent, NETWORKS).map((n) => ({
    name: n.name,
    cidr: formatCidr4(n.subnet),
    bridge: n.bridge,
    endpoints: endpoints.filter((e) => e.network === n.name).map((e) => e.name),
    file: n.source.file,
  }));
  if (o.json) {
    o.out(JSON.stringify(rows, null, 2) + "\n");
    return EXIT.OK;
  }
  const table = [["NAME", "CIDR", "BRIDGE", "ENDPOINTS", "FILE"], ...rows.map((r) => [r.name, r.cidr, r.bridge, String(r.endpoints.length), r.file])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) o.out(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ") + "\n");
  return EXIT.OK;
}
