import { existsSync } from "node:fs";
import { fragment } from "../../src/core/intent.js";
import type { IpLink } from "../../src/core/live-reader.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { Reconciler, Resource } from "../../src/core/resource.js";
import { nsName } from "../../src/exec/runner.js";
import { EBPF, ebpfIntent } from "./intent.js";
import type { ProgramIntent } from "./intent.js";
import { BPFFS, attachments, mapsFromBatch, pinBase, pinnedPrograms } from "./read.js";
import type { BpfNet, BpfProg, PinnedProgram } from "./read.js";
import { renderProgram } from "./render.js";
import { ensureObject, prepareObjects } from "./prepare.js";

/**
 * `[[ebpf.programs]]`: XDP and tc (clsact) BPF programs on named devices of the target. Owned
 * programs are the ones pinned under /sys/fs/bpf/bolt/TARGET/ (read.ts); any other program on
 * a hook bolt wants is foreign, a plan-time conflict, never replaced.
 */
export const ebpfReconciler: Reconciler = {
  kind: "ebpf",
  phases: {
    bpffs: {},
    pins: { after: ["bpffs"] },
    // Devices first: bridges, endpoint veths and WireGuard interfaces a program may sit on.
    xdp: { after: ["pins", "network.link", "endpoint.inside", "wireguard.conf"] },
    // A classifier hangs off the device's clsact qdisc, which the tc kind creates (it owns every qdisc).
    tc: { after: ["pins", "tc.clsact", "network.link", "endpoint.inside", "wireguard.conf"] },
    // A superseded version is unpinned once its successor is attached.
    unpin: { after: ["xdp", "tc"] },
  },
  uses: ["network", "endpoint", "wireguard"],
  intent: ebpfIntent,
  replaceOn: [],
  offlineUnchecked: "eBPF programs are not compiled, their sections not checked and their devices' XDP support not read",

  desired(ctx) {
    const resources: Resource[] = [];
    const diagnostics: Diagnostic[] = [];
    const created = new Set(ctx.desired.flatMap((r) => r.keys.filter((k) => k.startsWith("link:")).map((k) => k.slice(5))));
    const bpffs = ctx.facts.get("ebpf.bpffs");
    fragment(ctx.intent, EBPF).programs.forEach((p, i) => {
      const kind = ctx.facts.get(`ebpf.link:${p.interface}`);
      if (kind === undefined && !created.has(p.interface) && ctx.facts.has("ebpf.bpffs")) {
        diagnostics.push({
          severity: "error",
          message: `ebpf program "${p.name}": device ${p.interface} does not exist in ${nsName(ctx.target)}`,
          source: p.source,
        });
        return;
      }
      const mode = p.attach === "xdp" ? xdpMode(p, kind ?? "veth", diagnostics) : "-";
      if (!mode) return;
      resources.push({
        kind: "ebpf",
        name: p.name,
        id: `ebpf:${p.name}`,
        keys: [`bpf:${p.attach}:${p.interface}`],
        spec: { interface: p.interface, attach: p.attach, mode, program: p.digest },
        display: { program: `${p.digest} (${p.sourceFile ?? p.objectFile} section ${p.section})` },
        deps: [],
        owned: true,
        source: p.source,
        fieldSources: { program: p.fileAt, ...(p.modeAt ? { mode: p.modeAt } : {}) },
        data: {
          section: p.section,
          file: p.sourceFile ?? p.objectFile,
          compile: !!p.sourceFile,
          fileAt: p.fileAt,
          sectionAt: p.sectionAt,
          ...(i === 0 && bpffs === "no" ? { mount: true } : {}),
        },
      });
    });
    return { resources, diagnostics };
  },

  async read(io, ctx) {
    const wanted = fragment(ctx.intent, EBPF).programs;
    const base = pinBase(io.target);
    // Without a pin tree of this target's and nothing wanted, a plan starts no process for eBPF.
    if (!wanted.length && !existsSync(base)) return { resources: [], foreign: new Map() };
    const facts: Record<string, string> = {};
    const [progsR, netR, links, fsR] = await Promise.all([
      io.exec(["bpftool", "-j", "-f", "prog", "show"], null),
      io.exec(["bpftool", "-j", "net", "show"]),
      wanted.length ? io.ipJson<IpLink[]>(["-d", "link", "show"]) : Promise.resolve([] as IpLink[]),
      wanted.length ? io.exec(["stat", "-f", "-c", "%T", BPFFS], null) : Promise.resolve(undefined),
    ]);
    const diagnostics: Diagnostic[] = [];
    for (const [r, what] of [
      [progsR, "bpftool -j -f prog show"],
      [netR, `bpftool -j net show (in ${nsName(io.target)})`],
    ] as const)
      if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr.trim() || "is bpftool installed?"}`);
    if (fsR) facts["ebpf.bpffs"] = fsR.stdout.trim() === "bpf_fs" ? "yes" : "no";
    for (const l of links) if (wanted.some((p) => p.interface === l.ifname)) facts[`ebpf.link:${l.ifname}`] = linkKind(l);
    const progs = (progsR.stdout.trim() ? JSON.parse(progsR.stdout) : []) as BpfProg[];
    const attached = attachments((netR.stdout.trim() ? JSON.parse(netR.stdout) : []) as BpfNet[]);
    const mine = pinnedPrograms(progs, base);
    // Any target's program is bolt's; only one pinned elsewhere (or nowhere) is foreign.
    const bolts = new Set(progs.filter((p) => p.pinned?.some((x) => x.startsWith(`${BPFFS}/bolt/`))).map((p) => p.id));
    const foreign = new Map<string, string>();
    for (const a of attached)
      if (!bolts.has(a.id)) foreign.set(`bpf:${a.attach}:${a.interface}`, `${a.attach} program id ${a.id} "${progs.find((p) => p.id === a.id)?.name ?? "?"}"`);
    const byName = new Map<string, PinnedProgram>();
    for (const m of mine) {
      const cur = byName.get(m.name);
      // Two versions pinned (an apply killed between attach and unpin): the attached one is the program.
      if (!cur || attached.some((a) => a.id === m.prog.id)) byName.set(m.name, m);
    }
    const mapIds = [...new Set([...byName.values()].flatMap((m) => m.prog.map_ids ?? []))];
    const maps = mapIds.length
      ? mapsFromBatch(
          JSON.parse(
            (await io.runner.run(["bpftool", "-j", "batch", "file", "-"], mapIds.map((id) => `map show id ${id}\nmap dump id ${id}`).join("\n") + "\n"))
              .stdout || "[]",
          ),
        )
      : new Map<number, string>();
    const resources: Resource[] = [...byName.values()].map((m) => {
      const at = attached.find((a) => a.id === m.prog.id);
      const runs =
        m.prog.run_cnt !== undefined
          ? `${m.prog.run_cnt} runs, ${m.prog.run_cnt ? Math.round((m.prog.run_time_ns ?? 0) / m.prog.run_cnt) : 0} ns each`
          : "runs not counted (kernel.bpf_stats_enabled = 0)";
      return {
        kind: "ebpf",
        name: m.name,
        id: `ebpf:${m.name}`,
        keys: at ? [`bpf:${at.attach}:${at.interface}`] : [],
        spec: { interface: at?.interface ?? "", attach: at?.attach ?? "", mode: at?.mode ?? "", program: m.digest },
        deps: [],
        owned: true,
        data: { fn: m.fn, id: m.prog.id },
        counters: {
          program: `id ${m.prog.id} ${m.prog.type} ${m.prog.name}, ${runs}`,
          maps: (m.prog.map_ids ?? []).map((id) => maps.get(id) ?? `map ${id}`).join("; "),
        },
      };
    });
    return { resources, foreign, facts, diagnostics };
  },

  // `bolt validate` compiles too (clang and llvm-objdump read no kernel state): a C error is a validate error at its line:col.
  async validateTools(intent, runner) {
    const out: Diagnostic[] = [];
    for (const p of fragment(intent, EBPF).programs) {
      const file = p.sourceFile ?? p.objectFile!;
      const r = await ensureObject({ ...p, file, compile: !!p.sourceFile, sectionAt: p.sectionAt, fileAt: p.fileAt }, runner);
      out.push(...r.diagnostics);
    }
    return out;
  },

  prepare: (changes, io) => prepareObjects(changes, io),

  render(change, ctx) {
    const ops = renderProgram(change, ctx.target, ctx.prepared.get(change.id));
    if (change.after?.data?.mount && change.action !== "delete")
      ops.unshift({ tool: "exec", ns: null, args: ["mount", "-t", "bpf", "bpf", BPFFS], phase: "bpffs", undo: [] });
    return ops;
  },

  // A program on a packet hook decides what passes: attaching, replacing or removing one is a traffic change.
  impact: () => "connectivity",
};

/** Devices whose drivers run XDP natively (`ndo_bpf`); a physical NIC ("device") is assumed to. */
const NATIVE_XDP = new Set(["veth", "tun", "bond", "device"]);

function linkKind(l: IpLink & { link_type?: string }): string {
  if (l.linkinfo?.info_kind) return l.linkinfo.info_kind;
  return l.link_type === "loopback" ? "loopback" : "device";
}

function xdpMode(p: ProgramIntent, kind: string, diagnostics: Diagnostic[]): string | undefined {
  const native = NATIVE_XDP.has(kind);
  if (p.mode === "native" && !native) {
    diagnostics.push({
      severity: "error",
      message: `ebpf program "${p.name}": ${p.interface} is a ${kind} device, whose driver has no native XDP (the kernel refuses it: "Underlying driver does not support XDP in native mode")`,
      source: p.modeAt ?? p.source,
      hint: 'use mode = "generic", or leave mode out',
    });
    return undefined;
  }
  if (p.mode) return p.mode;
  if (native) return "native";
  diagnostics.push({
    severity: "warning",
    message: `ebpf program "${p.name}": ${p.interface} is a ${kind} device without native XDP: attached in generic (skb) mode`,
    source: p.source,
  });
  return "generic";
}
