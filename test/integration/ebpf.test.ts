// eBPF programs proven by traffic: an XDP program built from C drops UDP to one port and counts
// it in a map that `bolt show --json` reads; a changed source replaces it atomically while an
// allowed UDP stream and a ping run (nothing lost); a tc-ingress program does the same on the
// clsact hook; a C error is a validate error at the C file's line:col, an object without the
// section and native XDP on a bridge are errors with the kernel untouched; a foreign XDP program
// is a plan-time conflict and stays; destroy removes every filter, pin and program.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { SKIP_REASON, Sandbox, ipJson, must, ping, requireBuild, run } from "./harness.js";
import type { Json } from "./harness.js";
import { applyConverged } from "./nft-topology.js";

const HEADERS = `#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
`;

/** Counts UDP datagrams in map "counts" (key 0: passed, key 1: dropped) and drops those to PORT. */
const program = (port: number, hook: "xdp" | "tc") => `${HEADERS}
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} counts SEC(".maps");

SEC("${hook}")
int ${hook}_filter(${hook === "xdp" ? "struct xdp_md" : "struct __sk_buff"} *ctx) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return ${hook === "xdp" ? "XDP_PASS" : "0"};
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP) return ${hook === "xdp" ? "XDP_PASS" : "0"};
  struct udphdr *udp = (void *)(ip + 1);
  if ((void *)(udp + 1) > end) return ${hook === "xdp" ? "XDP_PASS" : "0"};
  __u32 k = udp->dest == bpf_htons(${port}) ? 1 : 0;
  __u64 *c = bpf_map_lookup_elem(&counts, &k);
  if (c) __sync_fetch_and_add(c, 1);
  return k ? ${hook === "xdp" ? "XDP_DROP" : "2 /* TC_ACT_SHOT */"} : ${hook === "xdp" ? "XDP_PASS" : "0"};
}
char LICENSE[] SEC("license") = "GPL";
`;

/** A UDP receiver (counts per port, prints them on SIGTERM) and a paced sender, as node scripts. */
const UDP_JS = `
const dgram = require("dgram");
const [mode, ...a] = process.argv.slice(2);
if (mode === "recv") {
  const counts = {};
  let open = 0;
  for (const p of a) {
    const s = dgram.createSocket("udp4");
    s.on("message", () => { counts[p] = (counts[p] || 0) + 1; });
    s.bind(Number(p), "0.0.0.0", () => { if (++open === a.length) console.log("ready"); });
  }
  process.on("SIGTERM", () => { console.log(JSON.stringify(counts)); process.exit(0); });
} else {
  const [host, port, n, gapMs] = a;
  const s = dgram.createSocket("udp4");
  let i = 0;
  const next = () => {
    if (i >= Number(n)) return s.close();
    s.send(String(i++), Number(port), host, () => setTimeout(next, Number(gapMs)));
  };
  next();
}
`;

describe.skipIf(!!SKIP_REASON)("eBPF programs", () => {
  const sb = new Sandbox();
  let peer: string;
  let udpJs: string;
  const cfg = (body: string) => sb.write("bolt-network.toml", body);
  const entry = (o: Record<string, string>) =>
    `[[ebpf.programs]]\n${Object.entries(o)
      .map(([k, v]) => `${k} = "${v}"`)
      .join("\n")}\n`;
  const pinTree = () => `/sys/fs/bpf/bolt/${sb.target}`;
  const xdpOn = async (ns: string, dev: string) => ((await ipJson(ns, ["-d", "link", "show", "dev", dev])) as Json[])[0].xdp;
  const filters = async (dir: "ingress" | "egress") => {
    const r = await run(["ip", "netns", "exec", sb.target, "tc", "-j", "filter", "show", "dev", "eth0", dir]);
    return r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as Json[]) : [];
  };
  const progIds = async () => (JSON.parse(await must(["bpftool", "-j", "prog", "show"])) as Json[]).map((p) => p.id as number);

  /** Starts a receiver on the target, runs `during` (senders in the peer), returns datagrams received per port. */
  const received = async (ports: number[], during: () => Promise<unknown>): Promise<Record<string, number>> => {
    const r = execa("ip", ["netns", "exec", sb.target, process.execPath, udpJs, "recv", ...ports.map(String)], { reject: false });
    await new Promise<void>((ok, fail) => {
      const t = setTimeout(() => fail(new Error("udp receiver did not start")), 10_000);
      r.stdout!.on("data", (d: Buffer) => {
        if (String(d).includes("ready")) {
          clearTimeout(t);
          ok();
        }
      });
    });
    await during();
    await new Promise((ok) => setTimeout(ok, 300));
    // ip netns exec execs node: the child's pid is the receiver's own.
    r.kill("SIGTERM");
    const out = await r;
    const last = String(out.stdout).trim().split("\n").pop() ?? "{}";
    return JSON.parse(last) as Record<string, number>;
  };
  const send = (port: number, n: number, gapMs = 2) =>
    must(["ip", "netns", "exec", peer, process.execPath, udpJs, "send", "10.77.0.1", String(port), String(n), String(gapMs)]);
  const showJson = async () => {
    const r = await sb.bolt(["show", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as Json).resources.filter((x: Json) => x.kind === "ebpf") as Json[];
  };

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    peer = await sb.addNetns("peer");
    await must(["ip", "-n", sb.target, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer]);
    await must(["ip", "-n", sb.target, "address", "add", "10.77.0.1/24", "dev", "eth0"]);
    await must(["ip", "-n", peer, "address", "add", "10.77.0.2/24", "dev", "eth0"]);
    for (const ns of [sb.target, peer]) for (const d of ["eth0", "lo"]) await must(["ip", "-n", ns, "link", "set", d, "up"]);
    udpJs = sb.write("udp.cjs", UDP_JS);
  });

  afterAll(async () => {
    // Whatever a failed test left: bolt's own destroy first (pins live outside the namespace).
    if (existsSync(pinTree())) await sb.bolt(["destroy"]);
    await sb.cleanup();
  });

  it("an XDP program from C drops UDP to its port, counts it in a map bolt show reads, and is replaced atomically under traffic", async () => {
    sb.write("filter.c", program(9999, "xdp"));
    const file = cfg(entry({ name: "udp_filter", interface: "eth0", source: "filter.c", attach: "xdp" }));
    await applyConverged(sb, [file]);
    const xdp = await xdpOn(sb.target, "eth0");
    expect(xdp?.mode, "native XDP on a veth").toBe(1);
    const firstId = xdp.prog.id as number;

    const got = await received([9998, 9999], async () => {
      await send(9999, 5);
      await send(9998, 5);
    });
    expect(got["9999"] ?? 0, "datagrams to the dropped port").toBe(0);
    expect(got["9998"]).toBe(5);
    expect(await ping(peer, "10.77.0.1")).toBe(true);
    const [shown] = await showJson();
    expect(shown.spec).toMatchObject({ interface: "eth0", attach: "xdp", mode: "native" });
    expect(shown.counters.maps).toMatch(/counts: 0=\d+ 1=5/);
    expect(shown.counters.program).toContain(`id ${firstId} xdp`);

    // The new source drops 9997 instead: swapped while 9998 streams (2000 datagrams, ~1 ms apart) and a ping runs.
    sb.write("filter.c", program(9997, "xdp"));
    const pingRun = execa("ip", ["netns", "exec", peer, "ping", "-n", "-q", "-i", "0.01", "-c", "300", "10.77.0.1"], { reject: false });
    let applied = -1;
    const during = await received([9998], async () => {
      const stream = send(9998, 2000, 1);
      await new Promise((ok) => setTimeout(ok, 300));
      const started = Date.now();
      const a = await sb.bolt(["apply", "-f", file]);
      expect(a.code, a.stderr).toBe(0);
      applied = Date.now() - started;
      await stream;
    });
    const pinged = await pingRun;
    expect(during["9998"], `allowed datagrams lost across the replace (apply took ${applied} ms)`).toBe(2000);
    expect(String(pinged.stdout)).toMatch(/300 packets transmitted, 300 received/);
    expect((await sb.planExit(file)).code, "plan after the replace").toBe(0);
    const now = await xdpOn(sb.target, "eth0");
    expect(now.prog.id).not.toBe(firstId);
    expect(await progIds()).not.toContain(firstId);
    const after = await received([9997, 9999], async () => {
      await send(9997, 3);
      await send(9999, 3);
    });
    expect(after).toEqual({ "9999": 3 });
    console.log(`[ebpf] atomic replace under a 1 ms UDP stream: 2000/2000 received, ping 300/300; apply took ${applied} ms`);

    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(await xdpOn(sb.target, "eth0")).toBeUndefined();
    expect(existsSync(pinTree()), "the target's pin tree").toBe(false);
    expect(await progIds()).not.toContain(now.prog.id);
  });

  it("a tc-ingress program filters on the clsact hook at bolt's preference; destroy removes the filter, its pins and the program", async () => {
    sb.write("tcfilter.c", program(9999, "tc"));
    const file = cfg(entry({ name: "tc_in", interface: "eth0", source: "tcfilter.c", attach: "tc-ingress" }));
    await applyConverged(sb, [file]);
    const mine = (await filters("ingress")).find((f) => f.options?.prog);
    expect(mine?.pref).toBe(45232);
    const got = await received([9998, 9999], async () => {
      await send(9999, 4);
      await send(9998, 4);
    });
    expect(got).toEqual({ "9998": 4 });
    const [shown] = await showJson();
    expect(shown.counters.maps).toMatch(/counts: 0=\d+ 1=4/);
    const id = mine.options.prog.id as number;
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect((await filters("ingress")).filter((f) => f.kind === "bpf")).toEqual([]);
    expect(existsSync(pinTree())).toBe(false);
    expect(await progIds()).not.toContain(id);
  });

  it("a C error is a validate error at the C file's line:col, and plan refuses it with the kernel untouched", async () => {
    sb.write("broken.c", `${HEADERS}\nSEC("xdp")\nint f(struct xdp_md *ctx) {\n  return no_such_symbol;\n}\n`);
    const file = cfg(entry({ name: "broken", interface: "eth0", source: "broken.c", attach: "xdp" }));
    const line = HEADERS.split("\n").length + 3;
    for (const args of [
      ["validate", "-f", file],
      ["plan", "-f", file],
    ]) {
      const r = await sb.bolt(args);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toContain(`${join(sb.dir, "broken.c")}:${line}:10: error: ebpf program "broken": `);
      expect(r.stderr).toContain("use of undeclared identifier 'no_such_symbol'");
    }
    expect(await xdpOn(sb.target, "eth0")).toBeUndefined();
    expect(existsSync(pinTree())).toBe(false);
  });

  it("an object without the named section, and native XDP on a bridge, are errors at their lines; nothing is loaded", async () => {
    sb.write("obj.c", program(9999, "xdp"));
    await must(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", join(sb.dir, "obj.c"), "-o", join(sb.dir, "obj.o")]);
    const before = await progIds();
    const text = entry({ name: "nosec", interface: "eth0", object: "obj.o", section: "classifier", attach: "xdp" });
    const r = await sb.bolt(["plan", "-f", cfg(text)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /bolt-network\.toml:5:\d+: error: ebpf program "nosec": .*obj\.o has no program section "classifier" \(its program sections: xdp\)/,
    );

    await must(["ip", "-n", sb.target, "link", "add", "br9", "type", "bridge"]);
    const br = await sb.bolt(["plan", "-f", cfg(entry({ name: "onbridge", interface: "br9", object: "obj.o", attach: "xdp", mode: "native" }))]);
    expect(br.code).toBe(1);
    expect(br.stderr).toMatch(/bolt-network\.toml:6:\d+: error: ebpf program "onbridge": br9 is a bridge device, whose driver has no native XDP/);
    // Without a mode it falls back to generic XDP, with a warning.
    const gen = await sb.bolt(["plan", "-f", cfg(entry({ name: "onbridge", interface: "br9", object: "obj.o", attach: "xdp" }))]);
    expect(gen.code, gen.stderr).toBe(0);
    expect(gen.stderr).toContain("attached in generic (skb) mode");
    await must(["ip", "-n", sb.target, "link", "del", "br9"]);
    expect(await xdpOn(sb.target, "eth0")).toBeUndefined();
    expect(existsSync(pinTree())).toBe(false);
    expect((await progIds()).filter((id) => !before.includes(id))).toEqual([]);
  });

  it("a foreign XDP program on the interface is a plan-time conflict and stays attached", async () => {
    sb.write("obj.c", program(9999, "xdp"));
    await must(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", join(sb.dir, "obj.c"), "-o", join(sb.dir, "foreign.o")]);
    await must(["ip", "-n", sb.target, "link", "set", "dev", "eth0", "xdpgeneric", "obj", join(sb.dir, "foreign.o"), "sec", "xdp"]);
    const id = (await xdpOn(sb.target, "eth0")).prog.id as number;
    try {
      const file = cfg(entry({ name: "mine", interface: "eth0", object: "foreign.o", attach: "xdp" }));
      const r = await sb.bolt(["apply", "-f", file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`error: ebpf "mine": bpf:xdp:eth0 already exists \\(xdp program id ${id} "xdp_filter", not created by bolt\\)`));
      expect((await xdpOn(sb.target, "eth0")).prog.id).toBe(id);
      expect(existsSync(pinTree())).toBe(false);
    } finally {
      await must(["ip", "-n", sb.target, "link", "set", "dev", "eth0", "xdpgeneric", "off"]);
    }
  });
});
