// eBPF programs: clang's diagnostics, llvm-objdump's symbols and the recorded bpftool reads
// (fixtures/ebpf, from bpftool 7.1.0 on kernel 6.18) parsed; a live read from those recordings;
// the ops of a create, an in-place replace and a delete with their undos; config errors at
// file:line:col.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configFiles } from "./helpers/config-at.js";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import { LiveReader } from "../../src/core/live-reader.js";
import type { Change, Resource } from "../../src/core/resource.js";
import { ReplayRunner } from "../../src/exec/replay-runner.js";
import { parseClangErrors, programsBySection } from "../../reconcilers/ebpf/compile.js";
import { EBPF } from "../../reconcilers/ebpf/intent.js";
import { attachments, cachedObject, mapText, mapsFromBatch, pinnedPrograms } from "../../reconcilers/ebpf/read.js";
import { renderProgram } from "../../reconcilers/ebpf/render.js";
import { ebpfReconciler } from "../../reconcilers/ebpf/index.js";

const FIX = join(__dirname, "../../fixtures/ebpf");
const fix = (f: string) => readFileSync(join(FIX, f), "utf8");
const { dir, load, diagnosticOf } = configFiles("ebpf");
writeFileSync(join(dir, "p.c"), "int x;\n");

describe("parsers", () => {
  it("clang's errors become diagnostics at the C file's line:col (carets and notes skipped)", () => {
    const d = parseClangErrors(fix("clang-errors.txt"), 'ebpf program "p": /tmp/ebpfx/bad3.c does not compile');
    expect(d.map((x) => [x.source, x.message.replace(/^.*does not compile: /, "")])).toEqual([
      [{ file: "/tmp/ebpfx/bad3.c", line: 5, col: 10 }, "use of undeclared identifier 'no_such_symbol'"],
      [{ file: "/tmp/ebpfx/bad3.c", line: 7, col: 23 }, "expected ';' after return statement"],
    ]);
    expect(parseClangErrors("fatal error: no input files\n", "x")).toEqual([]);
  });

  it("llvm-objdump -t: the functions of each program section", () => {
    expect([...programsBySection(fix("llvm-objdump-t.txt"))]).toEqual([["xdp", ["xdp_drop"]]]);
  });

  it("bpftool prog show: bolt's programs are the ones pinned under the target's tree", () => {
    const progs = JSON.parse(fix("bpftool-prog-show.json"));
    const mine = pinnedPrograms(progs, "/sys/fs/bpf/bolt/bolt-t-fx1");
    expect(mine.map((m) => [m.name, m.digest, m.fn, m.prog.id])).toEqual([
      ["drop9999", "2661c326178ce315", "xdp_drop", 223],
      ["tc_in", "e4f9ea058a7765ad", "xdp_drop", 228],
    ]);
    expect(pinnedPrograms(progs, "/sys/fs/bpf/bolt/bolt-t-fx")).toEqual([]);
  });

  it("bpftool net show: XDP (driver = native) and clsact attachments", () => {
    expect(attachments(JSON.parse(fix("bpftool-net-show.json")))).toEqual([
      { interface: "eth0", attach: "xdp", mode: "native", id: 223 },
      { interface: "eth0", attach: "tc-ingress", mode: "-", id: 228 },
    ]);
  });

  it("bpftool batch map show/dump: one text per map, BTF-formatted or hex", () => {
    expect([...mapsFromBatch(JSON.parse(fix("bpftool-batch-maps.json")))]).toEqual([
      [48, "counts: 0=0 1=0"],
      [49, "counts: 0=0 1=0"],
    ]);
    expect(mapText("raw", [{ key: ["0x01", "0x00"], value: ["0x05", "0x00"] }])).toBe("raw: 0x0100=0x0500");
    expect(mapText("none", [])).toBe("none: (empty)");
  });
});

describe("read from the recordings", () => {
  it("resources with their attachment, digest, run counts and maps; the foreign map names other programs", async () => {
    const ns = "bolt-t-fx1";
    const replay = new ReplayRunner({
      "bpftool -j -f prog show": { stdout: fix("bpftool-prog-show.json") },
      [`ip netns exec ${ns} bpftool -j net show`]: { stdout: fix("bpftool-net-show.json").replace(/"id": ?228/, '"id": 999') },
      [`ip -n ${ns} -j -d link show`]: { stdout: '[{"ifindex":2,"ifname":"eth0","flags":["UP"],"mtu":1500,"linkinfo":{"info_kind":"veth"}}]' },
      "stat -f -c %T /sys/fs/bpf": { stdout: "bpf_fs\n" },
      "bpftool -j batch file -": { stdout: fix("bpftool-batch-maps.json") },
    });
    const intent = load(`[[ebpf.programs]]\nname = "drop9999"\ninterface = "eth0"\nsource = "${join(dir, "p.c")}"\nattach = "tc-ingress"\n`).intent;
    const r = await ebpfReconciler.read(new LiveReader(replay, ns), { deep: false, intent, originals: new Map() });
    const drop = r.resources.find((x) => x.name === "drop9999")!;
    expect(drop.spec).toEqual({ interface: "eth0", attach: "xdp", mode: "native", program: "2661c326178ce315" });
    expect(drop.counters).toEqual({ program: "id 223 xdp xdp_drop, runs not counted (kernel.bpf_stats_enabled = 0)", maps: "counts: 0=0 1=0" });
    // tc_in's program is not the one attached (999 is nobody's): pinned, attached nowhere.
    expect(r.resources.find((x) => x.name === "tc_in")!.spec.interface).toBe("");
    expect([...r.foreign]).toEqual([["bpf:tc-ingress:eth0", 'tc-ingress program id 999 "?"']]);
    expect(r.facts).toEqual({ "ebpf.bpffs": "yes", "ebpf.link:eth0": "veth" });
  });
});

const res = (spec: Record<string, string>, data: Record<string, unknown> = {}): Resource => ({
  kind: "ebpf",
  name: "f",
  id: "ebpf:f",
  keys: [],
  spec,
  deps: [],
  owned: true,
  data,
});
const argv = (o: { args: string[] }) => o.args.join(" ");

describe("render", () => {
  const T = "bolt-t-x";
  const xdp = (program: string) => ({ interface: "eth0", attach: "xdp", mode: "native", program });
  const NS = `nsenter --net=/run/netns/${T} --`;
  const PIN = `/sys/fs/bpf/bolt/${T}/f`;

  it("create: pin, then attach; undone by detach and unpin", () => {
    const c: Change = { id: "ebpf:f", kind: "ebpf", name: "f", action: "create", after: res(xdp("aaaaaaaaaaaaaaaa")), changed: [], forcedBy: [] };
    const ops = renderProgram(c, T, { object: "/run/bolt/ebpf/aaaaaaaaaaaaaaaa.o", fn: "xdp_drop" });
    expect(ops.map((o) => [o.phase, argv(o), o.undo.map(argv)])).toEqual([
      ["pins", `mkdir -p ${PIN}`, [expect.stringMatching(/^find \/sys\/fs\/bpf\/bolt -mindepth 1 \( -path /)]],
      [
        "pins",
        `bpftool prog loadall /run/bolt/ebpf/aaaaaaaaaaaaaaaa.o ${PIN}/aaaaaaaaaaaaaaaa type xdp pinmaps ${PIN}/aaaaaaaaaaaaaaaa_maps`,
        [`rm -rf -- ${PIN}/aaaaaaaaaaaaaaaa ${PIN}/aaaaaaaaaaaaaaaa_maps`],
      ],
      ["xdp", `${NS} ip link set dev eth0 xdpdrv pinned ${PIN}/aaaaaaaaaaaaaaaa/xdp_drop`, [`${NS} ip link set dev eth0 xdpdrv off`]],
    ]);
  });

  it("a changed program on the same hook: swapped with -force (never detached), the old version unpinned last and re-loaded from its cached object on rollback", () => {
    const c: Change = {
      id: "ebpf:f",
      kind: "ebpf",
      name: "f",
      action: "update",
      before: res(xdp("aaaaaaaaaaaaaaaa"), { fn: "old_fn" }),
      after: res(xdp("bbbbbbbbbbbbbbbb")),
      changed: ["program"],
      forcedBy: [],
    };
    const ops = renderProgram(c, T, { object: "/run/bolt/ebpf/bbbbbbbbbbbbbbbb.o", fn: "new_fn" });
    expect(ops.some((o) => argv(o).endsWith("off"))).toBe(false);
    const attach = ops.find((o) => o.phase === "xdp")!;
    expect(argv(attach)).toBe(`${NS} ip -force link set dev eth0 xdpdrv pinned ${PIN}/bbbbbbbbbbbbbbbb/new_fn`);
    expect(attach.undo.map(argv)).toEqual([`${NS} ip -force link set dev eth0 xdpdrv pinned ${PIN}/aaaaaaaaaaaaaaaa/old_fn`]);
    const unpin = ops.at(-1)!;
    expect([unpin.phase, argv(unpin)]).toEqual(["unpin", `rm -rf -- ${PIN}/aaaaaaaaaaaaaaaa ${PIN}/aaaaaaaaaaaaaaaa_maps`]);
    expect(unpin.undo.map(argv)[1]).toBe(
      `bpftool prog loadall ${cachedObject("aaaaaaaaaaaaaaaa")} ${PIN}/aaaaaaaaaaaaaaaa type xdp pinmaps ${PIN}/aaaaaaaaaaaaaaaa_maps`,
    );
  });

  it("a tc program: `filter replace` at bolt's preference (its clsact is the tc kind's); delete detaches before it unpins", () => {
    const spec = { interface: "eth0", attach: "tc-egress", mode: "-", program: "cccccccccccccccc" };
    const c: Change = { id: "ebpf:f", kind: "ebpf", name: "f", action: "create", after: res(spec), changed: [], forcedBy: [] };
    const ops = renderProgram(c, T, { object: "/o.o", fn: "tc_f" });
    expect(ops.filter((o) => o.phase === "tc").map(argv)).toEqual([
      `${NS} tc filter replace dev eth0 egress pref 45232 handle 1 protocol all bpf direct-action object-pinned ${PIN}/cccccccccccccccc/tc_f`,
    ]);
    const del = renderProgram({ ...c, action: "delete", before: res(spec, { fn: "tc_f" }), after: undefined }, T, undefined);
    expect(del.map((o) => [o.phase, o.destroy, argv(o)])).toEqual([
      ["tc", true, `${NS} tc filter del dev eth0 egress pref 45232 handle 1 protocol all bpf`],
      ["pins", true, `rm -rf -- ${PIN}`],
      ["pins", true, expect.stringMatching(/^find /)],
    ]);
  });
});

describe("config errors at file:line:col", () => {
  const base = (extra: string) => `[[ebpf.programs]]\nname = "p"\ninterface = "eth0"\nsource = "p.c"\nattach = "tc-ingress"\n${extra}`;
  const errorAt = (text: string, line: number, message: RegExp) => expect(diagnosticOf(text, message).source?.line).toBe(line);

  it("mode on a tc program, a missing source, a duplicate name", () => {
    errorAt(base('mode = "native"\n'), 6, /mode is for attach = "xdp" only/);
    errorAt(base("").replace("p.c", "nope.c"), 4, /cannot read source .*nope\.c: ENOENT/);
    errorAt(`${base("")}\n${base("")}`, 8, /ebpf program "p" is defined twice/);
  });

  it("the fragment: section defaults by hook, a digest per program", () => {
    const { intent } = load(base(""));
    const [p] = fragment(intent, EBPF).programs;
    expect(p).toMatchObject({ name: "p", interface: "eth0", attach: "tc-ingress", section: "tc", sourceFile: join(dir, "p.c") });
    expect(p!.digest).toMatch(/^[0-9a-f]{16}$/);
  });
});
