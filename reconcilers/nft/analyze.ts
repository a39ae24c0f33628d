import { formatCidr4, overlaps, parseCidr4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { inNetns } from "../../src/exec/runner.js";
import type { CommandRunner, Ns } from "../../src/exec/runner.js";

/**
 * Read-only analysis of the other firewalls on the host (iptables-nft, iptables-legacy and
 * native nft tables: Docker, firewalld, …) against what bolt is about to do. Nothing here ever
 * writes; a table the local `nft` cannot parse is reported, not fatal.
 */
export interface Finding {
  severity: "conflict" | "warning" | "info";
  code: string;
  message: string;
  fix?: string;
}

export interface BoltFlows {
  bridges: string[];
  subnets: Cidr4[];
  /** bolt forwards packets (internet networks or port forwards) */
  forwards: boolean;
  hostPorts: { protocol: string; port: number }[];
  /** docker_conflict_resolution: bolt keeps its own ACCEPTs in DOCKER-USER */
  resolving?: boolean;
}

/** iptables-save text: FORWARD policy and DNAT'ed host ports per table. */
export function parseIptablesSave(text: string): {
  forwardPolicy?: string;
  dnatPorts: { protocol: string; port: number; line: string }[];
  dockerUser: boolean;
  boltAccepts: string[];
} {
  let table = "";
  let forwardPolicy: string | undefined;
  let dockerUser = false;
  const dnatPorts: { protocol: string; port: number; line: string }[] = [];
  /** "-i BRIDGE" / "-o BRIDGE": bolt's marked ACCEPTs in DOCKER-USER (docker-user reconciler) */
  const boltAccepts: string[] = [];
  for (const line of text.split("\n")) {
    const bolt = /^-A DOCKER-USER (-[io]) (\S+) -m comment --comment "?bolt:(\S+?)"? -j ACCEPT$/.exec(line.trim());
    if (line.startsWith("*")) table = line.slice(1).trim();
    else if (table === "filter" && line.startsWith(":FORWARD ")) forwardPolicy = line.split(/\s+/)[1];
    else if (table === "filter" && line.startsWith(":DOCKER-USER ")) dockerUser = true;
    else if (table === "filter" && bolt && bolt[2] === bolt[3]) boltAccepts.push(`${bolt[1]} ${bolt[2]}`);
    else if (table === "nat" && /-j DNAT/.test(line)) {
      const proto = /-p (tcp|udp)/.exec(line)?.[1];
      const port = /--dport (\d+)/.exec(line)?.[1];
      if (proto && port) dnatPorts.push({ protocol: proto, port: Number(port), line: line.trim() });
    }
  }
  return { forwardPolicy, dnatPorts, dockerUser, boltAccepts };
}

interface NftJson {
  nftables: {
    table?: { family: string; name: string };
    chain?: { family: string; table: string; name: string; hook?: string; policy?: string; prio?: number };
    rule?: { family: string; table: string; chain: string; expr: Record<string, unknown>[] };
  }[];
}

/** iptables-nft keeps its tables under these names; iptables-save already reports them. */
const IPTABLES_TABLES = new Set(["filter", "nat", "mangle", "raw", "security"]);

export function analyzeNftTable(json: NftJson): Finding[] {
  const out: Finding[] = [];
  const forwardChains = new Set<string>();
  for (const item of json.nftables) {
    const c = item.chain;
    if (!c?.hook) continue;
    if (c.hook === "forward") forwardChains.add(c.name);
    if (c.hook === "forward" && c.policy === "drop") {
      out.push({
        severity: "conflict",
        code: "foreign-forward-drop",
        message: `table ${c.family} ${c.table}: base chain "${c.name}" on the forward hook has policy drop; in nftables every base chain votes, so it drops bolt's forwarded traffic whatever bolt's own table accepts`,
        fix: `add an accept for bolt's bridges to that tool's own configuration`,
      });
    }
  }
  const drops = json.nftables.filter((i) => i.rule && forwardChains.has(i.rule.chain) && i.rule.expr.some((e) => "drop" in e)).length;
  const t = json.nftables.find((i) => i.table)?.table;
  if (drops && t)
    out.push({
      severity: "warning",
      code: "foreign-forward-drop-rules",
      message: `table ${t.family} ${t.name}: ${drops} drop rule(s) in forward-hook chains may drop traffic bolt forwards`,
    });
  return out;
}

export async function analyzeForeign(runner: CommandRunner, target: Ns, flows: BoltFlows): Promise<Finding[]> {
  const run = (argv: string[]) => runner.run(inNetns(target, argv)).catch((e: Error) => ({ stdout: "", stderr: e.message, code: 127 }));
  const findings: Finding[] = [];
  for (const [tool, label] of [
    ["iptables-save", "iptables (nf_tables)"],
    ["iptables-legacy-save", "iptables-legacy"],
  ] as const) {
    const r = await run([tool]);
    if (r.code !== 0 || !r.stdout.trim()) continue;
    const ipt = parseIptablesSave(r.stdout);
    // bolt writes its DOCKER-USER accepts with `iptables` (the backend iptables-save shows); a
    // DOCKER-USER in the other backend (Docker on iptables-legacy) is only resolved when bolt's
    // marked accepts are really in it.
    const bolted = flows.bridges.every((b) => ipt.boltAccepts.includes(`-i ${b}`) && ipt.boltAccepts.includes(`-o ${b}`));
    if (ipt.forwardPolicy === "DROP" && flows.forwards && flows.resolving && ipt.dockerUser && (tool === "iptables-save" || bolted)) {
      findings.push({
        severity: "info",
        code: "iptables-forward-drop-resolved",
        message: `${label}: the FORWARD chain's policy is DROP; bolt accepts its bridges in DOCKER-USER (docker_conflict_resolution = true)`,
      });
    } else if (ipt.forwardPolicy === "DROP" && flows.forwards) {
      findings.push({
        severity: "conflict",
        code: "iptables-forward-drop",
        message: `${label}: the FORWARD chain's policy is DROP (Docker sets this); bolt's forwarded traffic for ${flows.bridges.join(", ") || "its bridges"} is dropped there unless accepted`,
        fix: ipt.dockerUser
          ? `Docker's documented escape: accept bolt's bridges in DOCKER-USER, e.g. ${flows.bridges.map((b) => `${tool.replace(/-save$/, "")} -I DOCKER-USER -i ${b} -j ACCEPT; ${tool.replace(/-save$/, "")} -I DOCKER-USER -o ${b} -j ACCEPT`).join("; ")}`
          : `accept bolt's bridges in the FORWARD chain of that tool's configuration`,
      });
    }
    for (const d of ipt.dnatPorts) {
      if (flows.hostPorts.some((p) => p.protocol === d.protocol && p.port === d.port)) {
        findings.push({
          severity: "conflict",
          code: "port-clash",
          message: `${label}: ${d.protocol} port ${d.port} is already DNATed by another tool (${d.line}); a bolt port forward on the same port races with it`,
        });
      }
    }
  }
  const tables = await run(["nft", "-j", "list", "tables"]);
  if (tables.code === 0) {
    const list = (JSON.parse(tables.stdout) as NftJson).nftables.flatMap((i) => (i.table ? [i.table] : []));
    for (const t of list) {
      if (t.family === "inet" && t.name === "bolt") continue;
      if ((t.family === "ip" || t.family === "ip6") && IPTABLES_TABLES.has(t.name)) continue;
      const r = await run(["nft", "-j", "list", "table", t.family, t.name]);
      if (r.code !== 0) {
        findings.push({
          severity: "info",
          code: "unreadable-table",
          message: `table ${t.family} ${t.name} could not be read by this nft (${r.stderr.trim().split("\n")[0]}); it was not analysed`,
        });
        continue;
      }
      findings.push(...analyzeNftTable(JSON.parse(r.stdout) as NftJson));
    }
  }
  const addrs = await run(["ip", "-j", "addr", "show"]);
  if (addrs.code === 0) {
    for (const l of JSON.parse(addrs.stdout) as { ifname: string; ifalias?: string; addr_info: { family: string; local: string; prefixlen: number }[] }[]) {
      if (l.ifalias?.startsWith("bolt1,") || flows.bridges.includes(l.ifname)) continue;
      for (const a of l.addr_info.filter((x) => x.family === "inet")) {
        const c = parseCidr4(`${a.local}/${a.prefixlen}`);
        const hit = c && flows.subnets.find((s) => overlaps(s, c));
        if (hit)
          findings.push({
            severity: "conflict",
            code: "subnet-overlap",
            message: `${l.ifname} has ${a.local}/${a.prefixlen}, overlapping bolt's subnet ${formatCidr4(hit)}`,
          });
      }
    }
  }
  return findings;
}
