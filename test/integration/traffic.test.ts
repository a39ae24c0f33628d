// Traffic control proven by traffic (iperf3, UDP round trips, DSCP seen by the receiver):
// an endpoint's ingress and egress caps hold within 10 %; a critical class keeps a game-port
// UDP flow's round trip short while bulk TCP saturates the link (measured with and without
// the rule); set_dscp reaches the receiver; a rate change is an in-place update; a foreign
// root qdisc is a plan-time conflict; a tc failure mid-apply rolls back exactly; destroy
// leaves no qdisc, filter or ifb. A second plan is empty after every apply.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import type { ResultPromise } from "execa";
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { SKIP_REASON, listening, must, posOf, requireBuild, run, snapshot } from "./harness.js";
import { Topology, applyConverged, destroyClean } from "./nft-topology.js";

const SRV = "10.78.0.10";
const GW = "10.78.0.1";

const config = (o: { ingress?: string; egress?: string; rules?: string; extra?: string } = {}) => `
[networks.games]
subnet = "10.78.0.0/24"

[[endpoints]]
name = "srv"
network = "games"
ip = "${SRV}"
bandwidth = { ${[o.ingress && `ingress = "${o.ingress}"`, o.egress && `egress = "${o.egress}"`].filter(Boolean).join(", ")} }
${o.rules ?? ""}
${o.extra ?? ""}`;

const GAME_RULE = `
[[traffic.rules]]
pattern = "udp:27015"
priority = "critical"
set_dscp = "ef"
`;

describe.skipIf(!!SKIP_REASON)("traffic control (tc htb, ifb, nft meta priority)", () => {
  const topo = new Topology();
  const sb = topo.sb;
  const procs = new Set<ResultPromise>();
  const srvNs = () => topo.ns("srv");

  /**
   * Throughput in Mbit/s of a TCP stream from `fromNs` to `ip` (an iperf3 server started in `serverNs`).
   * The client starts only once the server listens (a client started earlier is refused, and under
   * load the server can take seconds to bind); a one-off server (-1) that ended with a failed try
   * is started again before the next.
   */
  const iperf = async (serverNs: string, fromNs: string, ip: string, seconds: number): Promise<number> => {
    let out = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = execa("ip", ["netns", "exec", serverNs, "iperf3", "-s", "-1", "-p", "5201"], { reject: false });
      procs.add(server);
      let exited = false;
      void server.then(() => (exited = true));
      try {
        if (!(await listening(serverNs, 5201, { gone: () => exited }))) continue;
        const r = await run([
          "ip",
          "netns",
          "exec",
          fromNs,
          "timeout",
          String(seconds + 10),
          "iperf3",
          "-c",
          ip,
          "-p",
          "5201",
          "-t",
          String(seconds),
          "--connect-timeout",
          "3000",
          "-J",
        ]);
        out = r.stdout;
        if (r.code === 0) break;
      } finally {
        server.kill("SIGKILL");
        await server;
        procs.delete(server);
      }
    }
    expect(out, "iperf3 never ran").toContain("sum_received");
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 1e6;
  };

  /** A UDP echo server in NS (its own pid, killed in teardown). */
  const udpEcho = async (ns: string, port: number) => {
    const p = execa(
      "ip",
      [
        "netns",
        "exec",
        ns,
        process.execPath,
        "-e",
        `const s=require("dgram").createSocket("udp4");s.on("message",(m,r)=>s.send(m,r.port,r.address));s.bind(${port},"0.0.0.0",()=>console.log("ready"))`,
      ],
      { reject: false },
    );
    procs.add(p);
    await new Promise<void>((resolve, reject) => {
      p.stdout!.on("data", (d: Buffer) => String(d).includes("ready") && resolve());
      void p.then((r) => reject(new Error(`udp echo in ${ns} exited: ${String(r.stderr)}`)));
    });
  };

  /** Median round trip (ms) of 20 UDP probes from NS to ip:port, 50 ms apart; a lost probe counts as 2000 ms. */
  const udpRtt = async (ns: string, ip: string, port: number): Promise<number> => {
    const script = `const d=require("dgram").createSocket("udp4");const sent=new Map(),rtt=[];let i=0;
d.on("message",(m)=>{const t=sent.get(String(m));if(t!==undefined){rtt.push(Number(process.hrtime.bigint()-t)/1e6);sent.delete(String(m));}});
const tick=()=>{if(i<20){const k="p"+i++;sent.set(k,process.hrtime.bigint());d.send(k,${port},"${ip}");setTimeout(tick,50);}else setTimeout(()=>{for(const _ of sent)rtt.push(2000);rtt.sort((a,b)=>a-b);console.log(rtt[10]);process.exit(0)},2000)};tick();`;
    const r = await must(["ip", "netns", "exec", ns, process.execPath, "-e", script]);
    return Number(r.trim());
  };

  beforeAll(async () => {
    requireBuild();
    await topo.build();
  });
  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.allSettled([...procs]);
    await topo.cleanup();
  });

  it("a 10 mbit ingress and a 5 mbit egress cap hold within 10 % (iperf3 both ways)", async () => {
    await applyConverged(sb, [sb.write("caps.toml", config({ ingress: "10mbit", egress: "5mbit" }))]);
    const down = await iperf(srvNs(), topo.host, SRV, 4);
    expect(down).toBeGreaterThan(9);
    expect(down).toBeLessThan(11);
    const up = await iperf(topo.host, srvNs(), GW, 4);
    expect(up).toBeGreaterThan(4.5);
    expect(up).toBeLessThan(5.5);
  }, 60_000);

  it("a rate change is one in-place update and the new cap holds", async () => {
    const f = sb.write("caps2.toml", config({ ingress: "20mbit", egress: "5mbit" }));
    const p = await sb.bolt(["plan", "-f", f]);
    expect(p.stdout).toContain('~ tc "htb/bv-srv"');
    expect(p.stdout).toMatch(/0 to add, 1 to change, 0 to replace, 0 to destroy/);
    await applyConverged(sb, [f]);
    const down = await iperf(srvNs(), topo.host, SRV, 4);
    expect(down).toBeGreaterThan(18);
    expect(down).toBeLessThan(22);
  }, 60_000);

  it("a critical class keeps the game port's UDP round trip short under a saturating TCP stream; DSCP EF reaches the receiver", async () => {
    const measure = async () => {
      const bulk = iperf(srvNs(), topo.host, SRV, 6);
      await new Promise((r) => setTimeout(r, 1500));
      const rtt = await udpRtt(topo.host, SRV, 27015);
      await bulk;
      return rtt;
    };
    await applyConverged(sb, [sb.write("norule.toml", config({ ingress: "10mbit" }))]);
    await udpEcho(srvNs(), 27015);
    // The receiver counts what arrives with DSCP 46 (EF) on the game port.
    await must(
      ["ip", "netns", "exec", srvNs(), "nft", "-f", "-"],
      "table inet t {\n chain c {\n  type filter hook input priority 0;\n  udp dport 27015 ip dscp ef counter\n }\n}\n",
    );
    const without = await measure();
    await applyConverged(sb, [sb.write("rule.toml", config({ ingress: "10mbit", rules: GAME_RULE }))]);
    const withRule = await measure();
    console.log(`game-port UDP median round trip under a saturating TCP stream: ${without.toFixed(1)} ms without the rule, ${withRule.toFixed(1)} ms with it`);
    // Without the rule the probes wait behind the bulk stream's queue (up to 1000 packets at 10 mbit).
    expect(without).toBeGreaterThan(30);
    expect(withRule).toBeLessThan(15);
    expect(withRule * 4).toBeLessThan(without);
    const counted = await must(["ip", "netns", "exec", srvNs(), "nft", "-j", "list", "table", "inet", "t"]);
    const packets = (JSON.parse(counted).nftables as { rule?: { expr: { counter?: { packets: number } }[] } }[])
      .flatMap((x) => x.rule?.expr ?? [])
      .find((e) => e.counter)?.counter?.packets;
    expect(packets).toBeGreaterThanOrEqual(20);
    // bolt show lists the classes with their counters: the game class carried the probes.
    const show = JSON.parse((await sb.bolt(["show", "--json"])).stdout) as { resources: { address: string; counters?: Record<string, string> }[] };
    const tree = show.resources.find((r) => r.address === "tc:htb/bv-srv");
    expect(tree?.counters?.classes).toMatch(/b017:10 [1-9]\d* bytes/);
  }, 90_000);

  it("bad input: rate above bandwidth_limit, an unknown unit, a missing device — errors at file:line:col, nothing touched", async () => {
    const before = await snapshot(topo.host);
    const cases: { text: string; needle: string; msg: RegExp }[] = [
      {
        text: config({ ingress: "10mbit", rules: '[[traffic.rules]]\npattern = "udp:27015"\nrate = "5mbit"\nbandwidth_limit = "1mbit"\n' }),
        needle: 'rate = "5mbit"',
        msg: /rate 5Mbit is above its bandwidth_limit 1Mbit/,
      },
      { text: config({ ingress: "10 mbit" }), needle: '"10 mbit"', msg: /bandwidth/ },
      {
        text: config({ ingress: "10mbit", extra: '[[traffic.interfaces]]\nname = "nosuch0"\nrate = "100mbit"\n' }),
        needle: "[[traffic.interfaces]]",
        msg: /nosuch0.*does not exist/,
      },
    ];
    for (const c of cases) {
      const f = sb.write("bad.toml", c.text);
      const r = await sb.bolt(["apply", "-f", f]);
      expect(r.code).not.toBe(0);
      const pos = posOf(c.text, c.needle);
      expect(r.stderr).toContain(`${f}:${pos.line}:`);
      expect(r.stderr).toMatch(c.msg);
    }
    expect(await snapshot(topo.host)).toEqual(before);
  }, 60_000);

  it("a foreign root qdisc on a device bolt would shape is a plan-time conflict, never replaced", async () => {
    await must([
      "ip",
      "netns",
      "exec",
      topo.host,
      "tc",
      "qdisc",
      "add",
      "dev",
      "up0",
      "root",
      "handle",
      "1:",
      "tbf",
      "rate",
      "50mbit",
      "burst",
      "32kbit",
      "latency",
      "50ms",
    ]);
    try {
      const f = sb.write("foreign.toml", config({ ingress: "10mbit", extra: '[[traffic.interfaces]]\nname = "up0"\nrate = "100mbit"\n' }));
      const r = await sb.bolt(["apply", "-f", f]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/up0.*tbf qdisc 1:/);
      const q = await must(["ip", "netns", "exec", topo.host, "tc", "qdisc", "show", "dev", "up0"]);
      expect(q).toMatch(/qdisc tbf 1: root/);
    } finally {
      await must(["ip", "netns", "exec", topo.host, "tc", "qdisc", "del", "dev", "up0", "root"]);
    }
  }, 30_000);

  it("[traffic] interfaces: the uplink gets a tree with the rule classes", async () => {
    await applyConverged(sb, [
      sb.write("uplink.toml", config({ ingress: "10mbit", rules: GAME_RULE, extra: '[[traffic.interfaces]]\nname = "up0"\nrate = "100mbit"\n' })),
    ]);
    const classes = await must(["ip", "netns", "exec", topo.host, "tc", "class", "show", "dev", "up0"]);
    expect(classes).toMatch(/class htb b017:10 parent b017:1 .*prio 0 rate 50Mbit ceil 100Mbit/);
  }, 30_000);

  it("a tc failure mid-apply rolls back exactly: the kernel is as it was", async () => {
    await applyConverged(sb, [sb.write("base.toml", config({ ingress: "10mbit" }))]);
    const before = await snapshot(topo.host);
    const treeBefore = await must(["ip", "netns", "exec", topo.host, "tc", "qdisc", "show"]);
    const hit = join(sb.dir, "tc-fault-hit");
    const env = sb.fakeEnv(["tc"], { BOLT_FAULT_PATTERN: "filter add", BOLT_FAULT_HIT: hit });
    const r = await sb.bolt(["apply", "-f", sb.write("more.toml", config({ ingress: "20mbit", egress: "5mbit", rules: GAME_RULE }))], { env });
    expect(existsSync(hit), "the fault was never injected").toBe(true);
    expect(readFileSync(hit, "utf8")).toContain("line");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/rolled back/);
    expect(await snapshot(topo.host)).toEqual(before);
    const stripHandles = (s: string) => s.replace(/pfifo [0-9a-f]+:/g, "pfifo");
    expect(stripHandles(await must(["ip", "netns", "exec", topo.host, "tc", "qdisc", "show"]))).toEqual(stripHandles(treeBefore));
  }, 60_000);

  it("destroy removes every qdisc, filter and ifb bolt made", async () => {
    await applyConverged(sb, [sb.write("all.toml", config({ ingress: "10mbit", egress: "5mbit", rules: GAME_RULE }))]);
    await destroyClean(sb);
    const q = await must(["ip", "netns", "exec", topo.host, "tc", "qdisc", "show"]);
    expect(q).not.toMatch(/b017:|clsact/);
    const links = await must(["ip", "-n", topo.host, "link", "show", "type", "ifb"]);
    expect(links.trim()).toBe("");
  }, 30_000);
});
