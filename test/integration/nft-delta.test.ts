// Incremental nftables writes (issue 14), in the kernel: an update that keeps the table's
// shape writes only what changed, and the kernel's own handles prove it — a rule whose text
// changed is replaced in place (no handle in the table changes), a rule added flushes and
// refills only its chain, a blocklist element added or removed leaves the set (its handle)
// alone and really drops / stops dropping the source's traffic. A hand edit is still drift and
// is repaired; a failure after the delta rolls back to the exact previous table; every apply
// converges (re-plan empty).
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { execaSync } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, must, requireBuild } from "./harness.js";
import type { Sandbox } from "./harness.js";
import type { Json } from "./harness.js";
import { Topology, UPLINK, applyConverged, boltTable, destroyClean, failingToolEnv } from "./nft-topology.js";

const config = (opts: { telnetPort?: number; extraRule?: boolean; ttl?: number; blocklist?: string } = {}) => `
[networks.front]
subnet = "10.71.0.0/24"

[[endpoints]]
name = "web"
network = "front"
ip = "10.71.0.10"

[[port_forwards]]
host_port = 8080
to = "web:80"

[[firewall.rules]]
name = "no-telnet"
action = "deny"
protocol = "tcp"
dest_ports = ${opts.telnetPort ?? 23}

[[firewall.rules]]
name = "no-smtp"
action = "deny"
protocol = "tcp"
dest_ports = 25
${opts.extraRule ? '\n[[firewall.rules]]\nname = "no-pop3"\naction = "reject"\nprotocol = "tcp"\ndest_ports = 110\n' : ""}
[firewall.ddos]
syn_flood_protection = true
blocklists = ["${opts.blocklist ?? "blocked.txt"}"]
${opts.ttl ? `\n[sysctl]\n"net.ipv4.ip_default_ttl" = ${opts.ttl}\n` : ""}`;

const BLOCKED = ["203.0.113.0/24", "192.0.2.0/25"];

/**
 * Env for a bolt whose `nft -f -` and `nft -c -f -` scripts are appended to LOG (each after a
 * `=== nft ARGS` line) before the real nft runs them: what bolt checked and what it wrote.
 */
function recordingNftEnv(sb: Sandbox, log: string): Record<string, string> {
  const real = execaSync("sh", ["-c", "command -v nft"]).stdout.trim();
  const bin = mkdtempSync(join(sb.dir, "rec-nft-"));
  writeFileSync(
    join(bin, "nft"),
    `#!/bin/sh
case " $* " in
  *" -f "*)
    t=$(mktemp)
    cat > "$t"
    { echo "=== nft $*"; cat "$t"; } >> "${log}"
    "${real}" "$@" < "$t"
    rc=$?
    rm -f "$t"
    exit $rc
    ;;
esac
exec "${real}" "$@"
`,
  );
  chmodSync(join(bin, "nft"), 0o755);
  return { PATH: `${bin}${delimiter}${process.env.PATH ?? ""}` };
}

/** The scripts in a recording, by kind: `nft -c -f -` (checks) and `nft -f -` (writes). */
function recorded(log: string): { checks: string[]; writes: string[] } {
  const checks: string[] = [];
  const writes: string[] = [];
  for (const part of readFileSync(log, "utf8").split(/^=== /m).filter(Boolean)) {
    const nl = part.indexOf("\n");
    (/ -c /.test(` ${part.slice(0, nl)} `) ? checks : writes).push(part.slice(nl + 1));
  }
  return { checks, writes };
}

describe.skipIf(!!SKIP_REASON)("nft: only what changed is written", () => {
  const topo = new Topology();
  const sb = topo.sb;
  let file: string;

  /** Rule handles by "chain key", set handles by name, from the kernel's JSON listing. */
  async function handles(): Promise<{ rules: Map<string, number>; sets: Map<string, number> }> {
    const j = JSON.parse(await must(["ip", "netns", "exec", topo.host, "nft", "-j", "list", "table", "inet", "bolt"]));
    const rules = new Map<string, number>();
    const sets = new Map<string, number>();
    for (const i of j.nftables as Json[]) {
      if (i.rule) rules.set(`${i.rule.chain} ${/^bolt:(.+)\|/.exec(i.rule.comment ?? "")?.[1] ?? `#${i.rule.handle}`}`, i.rule.handle);
      if (i.set) sets.set(i.set.name, i.set.handle);
    }
    return { rules, sets };
  }

  /** The keys whose handle differs between two listings (rules present in both). */
  const moved = (a: Map<string, number>, b: Map<string, number>) => [...a.keys()].filter((k) => b.has(k) && a.get(k) !== b.get(k)).sort();

  /**
   * apply (converged: re-plan empty) with nft recorded: the one script written, which must be
   * the one `nft -c` checked at plan time.
   */
  async function applyScript(f = file): Promise<string> {
    const log = join(sb.dir, "nft.log");
    rmSync(log, { force: true });
    writeFileSync(log, "");
    await applyConverged(sb, [f], recordingNftEnv(sb, log));
    const { checks, writes } = recorded(log);
    expect(writes.length).toBe(1);
    expect(checks).toEqual(writes);
    return writes[0]!;
  }

  const setElems = async () => must(["ip", "netns", "exec", topo.host, "nft", "list", "set", "inet", "bolt", "blocklist0"]);

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    sb.write("blocked.txt", BLOCKED.join("\n") + "\n");
    file = sb.write("bolt-network.toml", config());
    await applyConverged(sb, [file]);
    // The host's own service the outside reaches (bolt's input chain filters it).
    await topo.serveTcp(topo.host, 7000, "host-7000");
    expect(await topo.tcp(topo.outside, UPLINK.host, 7000)).toBe("host-7000");
  });
  afterAll(() => topo.cleanup());

  it("one rule changed: replaced in place (the kernel keeps its handle), nothing else written", async () => {
    const before = await handles();
    file = sb.write("bolt-network.toml", config({ telnetPort: 2323 }));
    const script = await applyScript();
    expect(script).toMatch(/^replace rule inet bolt firewall handle \d+ tcp dport 2323 .*$/m);
    expect(script.split("\n").filter((l) => l && !l.startsWith("#")).length).toBe(1);
    const after = await handles();
    // NLM_F_REPLACE swaps the rule under the same handle: no handle anywhere changes.
    expect(after.rules).toEqual(before.rules);
    expect(after.sets).toEqual(before.sets);
    expect(await boltTable(topo.host)).toContain("tcp dport 2323");
  });

  it("a rule added: only its chain is flushed and refilled, other chains keep their handles", async () => {
    const before = await handles();
    file = sb.write("bolt-network.toml", config({ telnetPort: 2323, extraRule: true }));
    const script = await applyScript();
    expect(script).toContain("flush chain inet bolt firewall");
    expect(script).not.toContain("delete table inet bolt");
    expect(script).not.toMatch(/rule inet bolt (?!firewall )/);
    const after = await handles();
    const firewall = [...before.rules.keys()].filter((k) => k.startsWith("firewall "));
    expect(moved(before.rules, after.rules)).toEqual(firewall.sort());
    expect(after.rules.has("firewall rule:no-pop3")).toBe(true);
    expect(after.sets).toEqual(before.sets);
  });

  it("a blocklist element added by delta: same set, element present, the source's traffic dropped; removed again: traffic passes", async () => {
    const before = await handles();
    sb.write("blocked.txt", [...BLOCKED, UPLINK.outside].join("\n") + "\n");
    const script = await applyScript();
    expect(script).toMatch(
      new RegExp(`^add set inet bolt blocklist0 \\{ type ipv4_addr; flags interval; elements = \\{ ${UPLINK.outside.replaceAll(".", "\\.")} \\} \\}$`, "m"),
    );
    expect(script).not.toMatch(/rule inet bolt|delete table/);
    const after = await handles();
    expect(after.sets).toEqual(before.sets);
    expect(after.rules).toEqual(before.rules);
    expect(await setElems()).toContain(UPLINK.outside);
    expect(await topo.tcp(topo.outside, UPLINK.host, 7000, 1)).toBeUndefined();

    sb.write("blocked.txt", BLOCKED.join("\n") + "\n");
    const back = await applyScript();
    expect(back).toMatch(new RegExp(`^delete element inet bolt blocklist0 \\{ ${UPLINK.outside.replaceAll(".", "\\.")}[ ,}]`, "m"));
    expect(back).not.toMatch(/rule inet bolt|delete table/);
    const again = await handles();
    expect(again.sets).toEqual(before.sets);
    expect(again.rules).toEqual(before.rules);
    expect(await setElems()).not.toContain(UPLINK.outside);
    expect(await topo.tcp(topo.outside, UPLINK.host, 7000)).toBe("host-7000");
  });

  it("an entry that merges with a listed one: the old element deleted, the merged one added, in one transaction the kernel accepts", async () => {
    const before = await handles();
    // 192.0.2.0/25 + 192.0.2.128/25 = 192.0.2.0/24: overlaps the element it replaces
    sb.write("blocked.txt", [...BLOCKED, "192.0.2.128/25"].join("\n") + "\n");
    const script = await applyScript();
    expect(script).toMatch(/^delete element inet bolt blocklist0 \{ 192\.0\.2\.0\/25[ ,}]/m);
    expect(script).toMatch(/^add set inet bolt blocklist0 \{ type ipv4_addr; flags interval; elements = \{ 192\.0\.2\.0\/24[ ,}]/m);
    expect((await handles()).sets).toEqual(before.sets);
    expect(await setElems()).toContain("192.0.2.0/24");
    sb.write("blocked.txt", BLOCKED.join("\n") + "\n");
    await applyScript();
    expect(await setElems()).toContain("192.0.2.0/25");
  });

  it("hand edits are drift, repaired by delta: an element added by hand, a rule deleted by hand", async () => {
    const nft = (...a: string[]) => must(["ip", "netns", "exec", topo.host, "nft", ...a]);
    await nft("add", "element", "inet", "bolt", "blocklist0", "{ 198.18.0.7 }");
    const smtp = (await handles()).rules.get("firewall rule:no-smtp")!;
    await nft("delete", "rule", "inet", "bolt", "firewall", "handle", String(smtp));
    expect((await sb.planExit(file)).code).toBe(2);
    const before = await handles();
    const script = await applyScript();
    expect(script).toMatch(/^delete element inet bolt blocklist0 \{ 198\.18\.0\.7[ ,}]/m);
    expect(script).toContain("flush chain inet bolt firewall");
    expect(script).not.toContain("delete table inet bolt");
    const after = await handles();
    expect(after.sets).toEqual(before.sets);
    expect(after.rules.has("firewall rule:no-smtp")).toBe(true);
    expect(moved(before.rules, after.rules).every((k) => k.startsWith("firewall "))).toBe(true);
    expect(await setElems()).not.toContain("198.18.0.7");
  });

  it("a failure after the delta (a sysctl written later) restores the exact previous table", async () => {
    const before = (await boltTable(topo.host, true))!;
    sb.write("blocked-next.txt", [...BLOCKED, "198.18.0.9"].join("\n") + "\n");
    const next = sb.write("next.toml", config({ telnetPort: 2424, extraRule: true, ttl: 63, blocklist: "blocked-next.txt" }));
    const dump = join(sb.dir, "dump-delta");
    const r = await sb.bolt(["apply", "-f", next], { env: failingToolEnv(sb, "sysctl", "-w", dump) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("rolled back");
    // The delta had run when the sysctl failed…
    const during = readFileSync(dump, "utf8");
    expect(during).toContain("198.18.0.9");
    expect(during).toContain("tcp dport 2424");
    // …and the table is back exactly, the old config still converged.
    expect(await boltTable(topo.host, true)).toBe(before);
    expect((await sb.planExit(file)).code).toBe(0);
    // Without the fault it applies (by delta) and converges.
    const script = await applyScript(next);
    expect(script).toContain("add set inet bolt blocklist0 {");
    expect(script).toContain("replace rule inet bolt firewall");
    expect(script).not.toContain("delete table inet bolt");
    expect(await setElems()).toContain("198.18.0.9");
  });

  it("destroy removes the table", async () => {
    await destroyClean(sb);
  });
});
