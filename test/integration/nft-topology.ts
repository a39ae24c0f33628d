// The issue-3 topology for the nftables tests: a "host" namespace bolt targets with --netns,
// an "outside" namespace on an uplink veth (the host's default route points at it; the
// outside has NO route back to bolt's subnets, so an endpoint can only talk to it through
// masquerade or a port forward), and endpoint namespaces bolt creates with the test prefix.
// Plus traffic helpers: a TCP banner server in a namespace, a client with a timeout, and
// readers for bolt's table, counters and the foreign (iptables) rulesets.
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { execa, execaSync } from "execa";
import type { ResultPromise } from "execa";
import { expect } from "vitest";
import { Sandbox, must, run } from "./harness.js";
import type { Json } from "./harness.js";

/** The uplink: host side `up0`, outside side `eth0`, a documentation prefix (RFC 5737). */
export const UPLINK = { host: "198.51.100.1", outside: "198.51.100.2", prefix: 24 } as const;

/** The uplink's IPv6 side. */
export const UPLINK6 = { host: "2001:db8:51::1", outside: "2001:db8:51::2" } as const;

export class Topology {
  readonly sb = new Sandbox();
  private readonly procs = new Set<ResultPromise>();
  private readonly servers = new Map<string, ResultPromise>();

  /** The namespace bolt targets. */
  get host(): string {
    return this.sb.target;
  }
  /** The "internet": only reachable from bolt's subnets through the host's NAT. */
  get outside(): string {
    return `${this.sb.prefix}outside`;
  }
  /** The namespace bolt creates for endpoint NAME. */
  ns(endpoint: string): string {
    return this.sb.ns(endpoint);
  }

  async build(): Promise<void> {
    await this.sb.addNetns();
    await this.sb.addNetns("outside");
    await must(["ip", "-n", this.host, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", this.outside]);
    await must(["ip", "-n", this.host, "address", "add", `${UPLINK.host}/${UPLINK.prefix}`, "dev", "up0"]);
    await must(["ip", "-n", this.outside, "address", "add", `${UPLINK.outside}/${UPLINK.prefix}`, "dev", "eth0"]);
    for (const [ns, dev] of [
      [this.host, "up0"],
      [this.outside, "eth0"],
      [this.host, "lo"],
      [this.outside, "lo"],
    ] as const)
      await must(["ip", "-n", ns, "link", "set", dev, "up"]);
    await must(["ip", "-n", this.host, "route", "add", "default", "via", UPLINK.outside]);
    // The premise every NAT test rests on: the outside knows nothing of 10.0.0.0/8.
    const routes = JSON.parse(await must(["ip", "-n", this.outside, "-j", "-4", "route", "show"])) as Json[];
    expect(routes.map((r) => r.dst)).toEqual([`198.51.100.0/${UPLINK.prefix}`]);
  }

  /**
   * IPv6 on the uplink too (RFC 3849 documentation prefix), the host's IPv6 default route via
   * the outside, which again has no route to bolt's prefixes. `nodad`: both ends are ours.
   */
  async buildV6(): Promise<void> {
    await must(["ip", "-n", this.host, "address", "add", `${UPLINK6.host}/64`, "dev", "up0", "nodad"]);
    await must(["ip", "-n", this.outside, "address", "add", `${UPLINK6.outside}/64`, "dev", "eth0", "nodad"]);
    await must(["ip", "-n", this.host, "-6", "route", "add", "default", "via", UPLINK6.outside]);
  }

  /**
   * A TCP server in NS that answers every connection with `banner` and closes. `ip netns exec`
   * execs node, so the child's pid is the server's own and cleanup kills exactly it.
   */
  serveTcp(ns: string, port: number, banner: string, host = "0.0.0.0"): Promise<void> {
    return this.serve(
      ns,
      port,
      banner,
      `require("net").createServer((s)=>{s.on("error",()=>{});s.end(process.argv[2]+"\\n")}).listen(Number(process.argv[1]),"${host}",()=>console.log("ready"))`,
    );
  }

  /** A UDP server in NS that answers every datagram with `banner`. */
  serveUdp(ns: string, port: number, banner: string): Promise<void> {
    return this.serve(
      ns,
      port,
      banner,
      `const s=require("dgram").createSocket("udp4");s.on("message",(m,r)=>s.send(process.argv[2]+"\\n",r.port,r.address));s.bind(Number(process.argv[1]),"0.0.0.0",()=>console.log("ready"))`,
    );
  }

  private async serve(ns: string, port: number, banner: string, script: string): Promise<void> {
    const p = execa("ip", ["netns", "exec", ns, process.execPath, "-e", script, String(port), banner], { reject: false });
    this.procs.add(p);
    this.servers.set(`${ns}:${port}`, p);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`server in ${ns}:${port} did not start`)), 10_000);
      p.stdout!.on("data", (d: Buffer) => {
        if (String(d).includes("ready")) {
          clearTimeout(t);
          resolve();
        }
      });
      void p.then((r) => {
        clearTimeout(t);
        reject(new Error(`server in ${ns}:${port} exited: ${String(r.stderr)}`));
      });
    });
  }

  /** Stops the server this topology started in NS on PORT (by its pid), and waits until it is gone. */
  async stopServer(ns: string, port: number): Promise<void> {
    const p = this.servers.get(`${ns}:${port}`);
    if (!p) throw new Error(`no server of this test in ${ns}:${port}`);
    p.kill("SIGKILL");
    await p;
    this.servers.delete(`${ns}:${port}`);
    this.procs.delete(p);
  }

  /** Connects from NS to ip:port; the banner when a server answered, undefined when not (dropped/refused/timeout). */
  async tcp(fromNs: string, ip: string, port: number, timeoutSec = 2): Promise<string | undefined> {
    const r = await run(["ip", "netns", "exec", fromNs, "nc", "-n", "-N", "-w", String(timeoutSec), ip, String(port)], "");
    const out = r.stdout.trim();
    return r.code === 0 && out ? out : undefined;
  }

  /** One echo with a 1 s wait: for the "cannot reach" side, where the harness's two tries only cost time. */
  async noReply(fromNs: string, ip: string): Promise<boolean> {
    const r = await run(["ip", "netns", "exec", fromNs, "ping", "-n", "-c", "1", "-W", "1", ip]);
    return r.code !== 0;
  }

  /** Sends one datagram from NS to ip:port; the answer, or undefined when none came within the timeout. */
  async udp(fromNs: string, ip: string, port: number, timeoutSec = 2): Promise<string | undefined> {
    const r = await run(["ip", "netns", "exec", fromNs, "nc", "-n", "-u", "-w", String(timeoutSec), ip, String(port)], "ping\n");
    const out = r.stdout.trim();
    return out || undefined;
  }

  /** A ping flood (`ping -f`): the number of echo replies received out of `count`. */
  async flood(fromNs: string, ip: string, count: number): Promise<number> {
    const r = await run(["ip", "netns", "exec", fromNs, "ping", "-n", "-q", "-f", "-c", String(count), "-W", "1", ip]);
    const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
    if (!m) throw new Error(`ping -f output not understood: ${r.stdout} ${r.stderr}`);
    expect(Number(m[1])).toBe(count);
    return Number(m[2]);
  }

  /** Kills the servers this topology started (by pid), then deletes every namespace and temp dir. */
  async cleanup(): Promise<void> {
    for (const p of this.procs) p.kill("SIGKILL");
    await Promise.allSettled([...this.procs]);
    await this.sb.cleanup();
  }
}

/** `nft list table inet bolt` in NS (text), or undefined when the table does not exist. */
export async function boltTable(ns: string, stateless = false): Promise<string | undefined> {
  const r = await run(["ip", "netns", "exec", ns, "nft", ...(stateless ? ["-s"] : []), "list", "table", "inet", "bolt"]);
  if (r.code !== 0) {
    expect(r.stderr).toMatch(/No such file or directory/);
    return undefined;
  }
  return r.stdout;
}

/** Per-rule counters of bolt's table as `bolt show --json` reports them: "chain key" → packets. */
export async function counters(sb: Sandbox): Promise<Record<string, number>> {
  const r = await sb.bolt(["show", "--json"]);
  expect(r.code, r.stderr).toBe(0);
  const nft = (JSON.parse(r.stdout).resources as Json[]).find((x) => x.kind === "nft");
  expect(nft, "bolt show lists the nft table").toBeDefined();
  return Object.fromEntries(Object.entries(nft.counters as Record<string, string>).map(([k, v]) => [k, Number(/^(\d+) packets/.exec(v)![1])]));
}

/** iptables-save in NS without the lines that change by themselves (header/footer comments, counters). */
export async function iptablesSave(ns: string, tool = "iptables-save"): Promise<string> {
  const out = await must(["ip", "netns", "exec", ns, tool]);
  return out
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .map((l) => (l.startsWith(":") ? l.replace(/ \[\d+:\d+\]$/, "") : l))
    .join("\n");
}

/** bolt apply that must succeed, followed by the convergence check: plan --detailed-exitcode is 0. */
export async function applyConverged(sb: Sandbox, files: string[], env?: Record<string, string>): Promise<void> {
  const f = files.flatMap((x) => ["-f", x]);
  const a = await sb.bolt(["apply", ...f], { env });
  expect(a.code, `apply failed:\n${a.stderr}`).toBe(0);
  const p = await sb.bolt(["plan", "--detailed-exitcode", ...f], { env });
  expect(p.code, `plan after apply is not empty:\n${p.stdout}\n${p.stderr}`).toBe(0);
}

/** bolt destroy that must succeed, and leave no bolt table behind. */
export async function destroyClean(sb: Sandbox): Promise<void> {
  const d = await sb.bolt(["destroy"]);
  expect(d.code, d.stderr).toBe(0);
  expect(await boltTable(sb.target)).toBeUndefined();
}

/**
 * Env for a bolt whose TOOL (sysctl, iptables) fails when called with `failOn` among its
 * arguments — after writing what bolt's table looks like in the kernel at that moment to
 * `dump`, which proves the nft transaction had really run before the failure. Other calls go
 * to the real tool. bolt reaches the wrapper through PATH, also via `ip netns exec NS TOOL`.
 */
export function failingToolEnv(sb: Sandbox, tool: "sysctl" | "iptables", failOn: string, dump: string): Record<string, string> {
  const real = execaSync("sh", ["-c", `command -v ${tool}`]).stdout.trim();
  const nft = execaSync("sh", ["-c", "command -v nft"]).stdout.trim();
  const bin = mkdtempSync(join(sb.dir, `fail-${tool}-`));
  writeFileSync(
    join(bin, tool),
    `#!/bin/sh
for a in "$@"; do
  if [ "$a" = "${failOn}" ]; then
    ${nft} -s list table inet bolt > "${dump}" 2>&1
    echo "${tool}: injected fault" >&2
    exit 1
  fi
done
exec ${real} "$@"
`,
  );
  chmodSync(join(bin, tool), 0o755);
  return { PATH: `${bin}${delimiter}${process.env.PATH ?? ""}` };
}
